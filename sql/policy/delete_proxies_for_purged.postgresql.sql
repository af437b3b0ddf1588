-- Delete-user policy, every level: nobody remains a proxy for a purged user.
-- PostgreSQL wording: the purged users' primary ids are gathered once into an array (see
-- delete_user_proxies.postgresql.sql: as a semi-join the planner expects one purged user and scans all
-- of user_proxies for each of the batch's users). Same rows as delete_proxies_for_purged.sql.
-- parameters: :restrict (1 = only the users :ids, 0 = every purged user), :ids (user ids)
-- expanding: ids
DELETE FROM user_proxies
WHERE proxy_for_primary_id = ANY(ARRAY(
    SELECT primary_id FROM users
    WHERE purged_at IS NOT NULL AND primary_id IS NOT NULL AND (:restrict = 0 OR id IN :ids)))
