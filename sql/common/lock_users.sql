-- Lock the users a batch will change before it re-reads their guards.
-- On SQLite the batch's BEGIN IMMEDIATE already holds the database write lock; this just reads.
-- parameters: :ids (user ids)
-- expanding: ids
SELECT id FROM users WHERE id IN :ids ORDER BY id
