-- Delete-user policy, every level: the proxy rows of the users being reduced (they are someone's
-- proxy) and those naming them (someone is their proxy). The last statement of a purge batch; see
-- delete_proxies.postgresql.sql for why.
-- parameters: :ids (user ids), :primary_ids (their primary ids, read before they were removed)
-- expanding: ids, primary_ids
DELETE FROM user_proxies
WHERE user_id IN :ids OR proxy_for_primary_id IN :primary_ids
