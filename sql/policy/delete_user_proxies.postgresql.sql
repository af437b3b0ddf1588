-- Delete-user policy, every level: a purged user's user_proxies go (they reach a person).
-- PostgreSQL wording: the purged users' ids are gathered once into an array and looked up on the
-- user_id index. As a semi-join, with statistics taken before any purge, the planner expects one
-- purged user and scans all of user_proxies for each of the batch's users (EXPLAIN ANALYZE at 100,000
-- users: 477,000 rows compared per batch, 50 ms; BENCHMARKS.md). Same rows as delete_user_proxies.sql.
-- parameters: :restrict (1 = only the users :ids, 0 = every purged user), :ids (user ids)
-- expanding: ids
DELETE FROM user_proxies
WHERE user_id = ANY(ARRAY(SELECT id FROM users WHERE purged_at IS NOT NULL AND (:restrict = 0 OR id IN :ids)))
