-- The batch's pairs as a table, so each kind moves for every pair in one set-based statement.
-- SQLite keeps a temporary table on the pooled connection: drop_pair_map removes it at the end.
-- parameters: none
CREATE TEMP TABLE IF NOT EXISTS merge_pair_map (
    from_id INTEGER PRIMARY KEY,
    to_id INTEGER NOT NULL UNIQUE,
    from_primary_id VARCHAR(255) NOT NULL UNIQUE,
    to_primary_id VARCHAR(255) NOT NULL UNIQUE,
    segment_type VARCHAR(8) NOT NULL
)
