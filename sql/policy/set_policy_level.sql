-- Record which delete-user policy level a purged user's remains now follow. Users already reduced
-- by a stricter level keep that level's name: a looser policy cannot give back what was removed.
-- parameters: :policy, :looser (levels looser than :policy; ['-'] for none),
--             :restrict (1 = only the users :ids, 0 = every purged user), :ids (user ids)
-- expanding: ids, looser
UPDATE users SET purge_policy = :policy
WHERE purged_at IS NOT NULL AND (:restrict = 0 OR id IN :ids)
  AND (purge_policy IS NULL OR purge_policy IN :looser)
