-- The batch's pairs as a table, so each kind moves for every pair in one set-based statement.
-- It lives only as long as the batch's transaction.
-- parameters: none
CREATE TEMP TABLE IF NOT EXISTS merge_pair_map (
    from_id BIGINT PRIMARY KEY,
    to_id BIGINT NOT NULL UNIQUE,
    from_primary_id VARCHAR(255) NOT NULL UNIQUE,
    to_primary_id VARCHAR(255) NOT NULL UNIQUE,
    segment_type VARCHAR(8) NOT NULL
) ON COMMIT DROP
