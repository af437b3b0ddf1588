-- `policy set`: wait for running purge batches. On SQLite its BEGIN IMMEDIATE already does.
-- parameters: :lock_key (unused here)
SELECT 1
