-- The primary ids of the users being reduced, read before reduce_users may remove them: proxy rows
-- that name these users are found by them (delete_proxies).
-- parameters: :ids (user ids); returns (id, primary_id)
-- expanding: ids
SELECT id, primary_id FROM users WHERE id IN :ids AND primary_id IS NOT NULL
