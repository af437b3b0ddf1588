-- The From users are deleted completely, whatever the delete-user policy says (as in Alma): what
-- was not moved (segments not merged, clashing items) goes with them by ON DELETE CASCADE.
-- parameters: none (pairs in merge_pair_map)
DELETE FROM users WHERE id IN (SELECT from_id FROM merge_pair_map)
