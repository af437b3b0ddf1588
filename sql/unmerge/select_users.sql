-- The users that decide whether a chunk of pairs can be undone: the To users (by row id), and whoever
-- holds a From user's primary id or row id now.
-- parameters: :ids (To users' and From users' row ids), :primary_ids (From users' primary ids)
-- expanding: ids, primary_ids
SELECT id, primary_id, purged_at
FROM users
WHERE id IN :ids OR primary_id IN :primary_ids
