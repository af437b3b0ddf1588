-- The users a From user may act for: the To user may now act for them. Clash rules: not for a user
-- the To user already acts for, and never for the To user itself; those rows go with the From user.
-- Nor for another From user of the batch when its To user is one the To user acts for once this
-- statement is done (it already did, or the From user did too): move_proxied_by would leave that row
-- naming a deleted user, so it too goes with the From user. tasks/merge/rules.py (proxy_moves) counts
-- the same.
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
  AND NOT EXISTS (
    SELECT 1 FROM merge_pair_map m
    JOIN merge_pair_map other ON other.from_primary_id = user_proxies.proxy_for_primary_id
    JOIN user_proxies t ON t.user_id IN (m.from_id, m.to_id) AND t.proxy_for_primary_id = other.to_primary_id
    WHERE m.from_id = user_proxies.user_id)
