-- Delete-user policy fully-remove: the user rows go, and with them (ON DELETE CASCADE) every segment,
-- loan and request, fee and fee transaction. Returns the ids it deleted.
-- parameters: :ids (user ids)
-- expanding: ids
DELETE FROM users WHERE id IN :ids
RETURNING id
