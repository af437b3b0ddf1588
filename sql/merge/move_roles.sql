-- The From users' roles now belong to the To user. Clash rule: a role the To user already holds
-- (same role type and scope) is not duplicated; it goes with the From user.
-- parameters: none (pairs in merge_pair_map)
UPDATE user_roles
SET user_id = (SELECT m.to_id FROM merge_pair_map m WHERE m.from_id = user_roles.user_id)
WHERE user_id IN (SELECT from_id FROM merge_pair_map)
  AND NOT EXISTS (
    SELECT 1 FROM user_roles t JOIN merge_pair_map m ON t.user_id = m.to_id
    WHERE m.from_id = user_roles.user_id
      AND t.role_type = user_roles.role_type AND t.scope = user_roles.scope)
