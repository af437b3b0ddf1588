-- Delete-user policy, every level: the user_blocks of the users being reduced go (they reach a person).
-- parameters: :ids (ids of users that reduce_users has just marked purged)
-- expanding: ids
DELETE FROM user_blocks WHERE user_id IN :ids
