-- Record which delete-user policy level a purged user's remains now follow.
-- parameters: :policy, :restrict (1 = only the users :ids, 0 = every purged user), :ids (user ids)
-- expanding: ids
UPDATE users SET purge_policy = :policy WHERE purged_at IS NOT NULL AND (:restrict = 0 OR id IN :ids)
