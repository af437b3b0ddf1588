-- The items of the pairs' users that can clash with what the other user holds (merge clash rules,
-- tasks/merge_rules.py): identifiers (type, value), roles (type, scope), the users each is a proxy
-- for (primary id), and the users who are proxies for each (user id); a proxy row comes with its row
-- id, since the merge's two proxy statements may both reach it (tasks/merge/rules.py, proxy_moves).
-- parameters: :user_ids (the pairs' From and To users)
-- expanding: user_ids
SELECT i.user_id, 'identifiers' AS kind, i.id_type AS a, i.value AS b
FROM user_identifiers i WHERE i.user_id IN :user_ids
UNION ALL
SELECT r.user_id, 'roles', r.role_type, r.scope
FROM user_roles r WHERE r.user_id IN :user_ids
UNION ALL
SELECT p.user_id, 'proxy_for', p.proxy_for_primary_id, CAST(p.id AS VARCHAR(32))
FROM user_proxies p WHERE p.user_id IN :user_ids
UNION ALL
SELECT u.id, 'proxied_by', CAST(p.user_id AS VARCHAR(32)), CAST(p.id AS VARCHAR(32))
FROM user_proxies p JOIN users u ON u.primary_id = p.proxy_for_primary_id
WHERE u.id IN :user_ids
