-- One row per pair of the batch (executed with the batch's rows at once).
-- parameters: :from_id, :to_id, :from_primary_id, :to_primary_id, :segment_type (Internal/External)
INSERT INTO merge_pair_map (from_id, to_id, from_primary_id, to_primary_id, segment_type)
VALUES (:from_id, :to_id, :from_primary_id, :to_primary_id, :segment_type)
