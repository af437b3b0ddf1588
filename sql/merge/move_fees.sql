-- Every fee of the From users, active or closed, now belongs to the To user; its transactions
-- (the ledger) follow the fee by fee id.
-- parameters: none (pairs in merge_pair_map)
UPDATE fees
SET user_id = (SELECT m.to_id FROM merge_pair_map m WHERE m.from_id = fees.user_id)
WHERE user_id IN (SELECT from_id FROM merge_pair_map)
