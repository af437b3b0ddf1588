-- Users who act for a From user now act for the To user. Clash rules: not the To user itself, not a
-- user who already acts for the To user (after move_proxy_for, which runs first), and not another From
-- user of the batch whose row move_proxy_for left with it (it goes with that user);
-- delete_proxies_for_from_users removes those rows. tasks/merge/rules.py (proxy_moves) counts the same.
-- parameters: none (pairs in merge_pair_map)
UPDATE user_proxies
SET proxy_for_primary_id = (
    SELECT m.to_primary_id FROM merge_pair_map m WHERE m.from_primary_id = user_proxies.proxy_for_primary_id)
WHERE proxy_for_primary_id IN (SELECT from_primary_id FROM merge_pair_map)
  AND user_id NOT IN (SELECT from_id FROM merge_pair_map)
  AND NOT EXISTS (
    SELECT 1 FROM merge_pair_map m
    WHERE m.from_primary_id = user_proxies.proxy_for_primary_id AND m.to_id = user_proxies.user_id)
  AND NOT EXISTS (
    SELECT 1 FROM user_proxies t JOIN merge_pair_map m ON t.proxy_for_primary_id = m.to_primary_id
    WHERE m.from_primary_id = user_proxies.proxy_for_primary_id AND t.user_id = user_proxies.user_id)
