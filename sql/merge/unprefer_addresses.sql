-- Clash rule: the To user's preferred one stays preferred. Where the To user already has a
-- preferred row, the From user's rows arrive not preferred. Runs before move_addresses.
-- parameters: none (pairs in merge_pair_map)
UPDATE user_addresses
SET preferred = FALSE
WHERE preferred = TRUE
  AND user_id IN (
    SELECT m.from_id FROM merge_pair_map m
    WHERE EXISTS (SELECT 1 FROM user_addresses t WHERE t.user_id = m.to_id AND t.preferred = TRUE))
