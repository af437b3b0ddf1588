-- Delete-user policy fully-remove: the purged user and everything attached (segments, loans,
-- requests, fees and their transactions, by ON DELETE CASCADE) go.
-- parameters: :restrict (1 = only the users :ids, 0 = every purged user), :ids (user ids)
-- expanding: ids
DELETE FROM users WHERE purged_at IS NOT NULL AND (:restrict = 0 OR id IN :ids)
