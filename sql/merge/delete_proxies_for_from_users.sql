-- Nobody remains a proxy for a deleted From user (rows not repointed: proxies not merged, or clashes).
-- parameters: none (pairs in merge_pair_map)
DELETE FROM user_proxies
WHERE proxy_for_primary_id IN (SELECT from_primary_id FROM merge_pair_map)
