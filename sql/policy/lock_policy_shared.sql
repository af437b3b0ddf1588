-- A purge batch holds the delete-user policy steady until it commits. On SQLite the batch's
-- BEGIN IMMEDIATE already excludes `policy set`; this statement only keeps the call uniform.
-- parameters: :lock_key (unused here)
SELECT 1
