-- The From users' emails now belong to the To user, with the pair's segment type.
-- parameters: none (pairs in merge_pair_map)
UPDATE user_emails
SET user_id = (SELECT m.to_id FROM merge_pair_map m WHERE m.from_id = user_emails.user_id),
    segment_type = (SELECT m.segment_type FROM merge_pair_map m WHERE m.from_id = user_emails.user_id)
WHERE user_id IN (SELECT from_id FROM merge_pair_map)
