-- The From users' attachments now belong to the To user (attachments have no segment type).
-- parameters: none (pairs in merge_pair_map)
UPDATE user_attachments
SET user_id = (SELECT m.to_id FROM merge_pair_map m WHERE m.from_id = user_attachments.user_id)
WHERE user_id IN (SELECT from_id FROM merge_pair_map)
