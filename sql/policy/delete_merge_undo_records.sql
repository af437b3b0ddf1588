-- A purged user is not reachable through an undo record of a merge into them: the records of the
-- merges whose To user is purged go (such a merge cannot be undone anyway: TO_USER_CHANGED).
-- parameters: :ids (the users being purged or reduced)
-- expanding: ids
DELETE FROM merge_undo WHERE to_user_id IN :ids
