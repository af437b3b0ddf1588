-- Lock the active fees of the users a batch will change, after the users themselves.
-- On SQLite the batch's BEGIN IMMEDIATE already holds the database write lock; this just reads.
-- parameters: :ids (user ids)
-- expanding: ids
SELECT id FROM fees WHERE user_id IN :ids AND status = 'ACTIVE' ORDER BY id
