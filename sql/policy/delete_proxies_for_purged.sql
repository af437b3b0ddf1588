-- Delete-user policy, every level: nobody remains a proxy for a purged user.
-- parameters: :restrict (1 = only the users :ids, 0 = every purged user), :ids (user ids)
-- expanding: ids
DELETE FROM user_proxies
WHERE proxy_for_primary_id IN (
    SELECT primary_id FROM users
    WHERE purged_at IS NOT NULL AND primary_id IS NOT NULL AND (:restrict = 0 OR id IN :ids))
