-- Every loan of the From users, active and history alike, now belongs to the To user.
-- parameters: none (pairs in merge_pair_map)
UPDATE loans
SET user_id = (SELECT m.to_id FROM merge_pair_map m WHERE m.from_id = loans.user_id)
WHERE user_id IN (SELECT from_id FROM merge_pair_map)
