-- The From users' identifiers now belong to the To user, with the pair's segment type. Clash rule:
-- one the To user already holds (same type and value) is not duplicated; it goes with the From user.
-- parameters: none (pairs in merge_pair_map)
UPDATE user_identifiers
SET user_id = (SELECT m.to_id FROM merge_pair_map m WHERE m.from_id = user_identifiers.user_id),
    segment_type = (SELECT m.segment_type FROM merge_pair_map m WHERE m.from_id = user_identifiers.user_id)
WHERE user_id IN (SELECT from_id FROM merge_pair_map)
  AND NOT EXISTS (
    SELECT 1 FROM user_identifiers t JOIN merge_pair_map m ON t.user_id = m.to_id
    WHERE m.from_id = user_identifiers.user_id
      AND t.id_type = user_identifiers.id_type AND t.value = user_identifiers.value)
