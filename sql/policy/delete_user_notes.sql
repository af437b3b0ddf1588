-- Delete-user policy, every level: a purged user's user_notes go (they reach a person).
-- parameters: :restrict (1 = only the users :ids, 0 = every purged user), :ids (user ids)
-- expanding: ids
DELETE FROM user_notes
WHERE user_id IN (SELECT id FROM users WHERE purged_at IS NOT NULL AND (:restrict = 0 OR id IN :ids))
