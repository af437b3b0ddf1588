-- `policy set` to a stricter level: the purged users kept under a looser one, whom it reduces too.
-- parameters: :looser (the levels below the new one)
-- expanding: looser
SELECT id FROM users
WHERE purged_at IS NOT NULL AND (purge_policy IS NULL OR purge_policy IN :looser)
ORDER BY id
