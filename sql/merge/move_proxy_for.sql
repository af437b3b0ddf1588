-- The users a From user may act for: the To user may now act for them. Clash rules: not for a user
-- the To user already acts for, and never for the To user itself; those rows go with the From user.
-- parameters: none (pairs in merge_pair_map)
UPDATE user_proxies
SET user_id = (SELECT m.to_id FROM merge_pair_map m WHERE m.from_id = user_proxies.user_id)
WHERE user_id IN (SELECT from_id FROM merge_pair_map)
  AND NOT EXISTS (
    SELECT 1 FROM merge_pair_map m
    WHERE m.from_id = user_proxies.user_id AND m.to_primary_id = user_proxies.proxy_for_primary_id)
  AND NOT EXISTS (
    SELECT 1 FROM user_proxies t JOIN merge_pair_map m ON t.user_id = m.to_id
    WHERE m.from_id = user_proxies.user_id AND t.proxy_for_primary_id = user_proxies.proxy_for_primary_id)
