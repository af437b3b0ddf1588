-- The undo records of a chunk of a merge run's pairs (tasks/db/undo_record.py).
-- parameters: :run_id, :from_primary_ids
-- expanding: from_primary_ids
SELECT id AS undo_id, from_primary_id, from_user_id, to_user_id AS undo_to_user_id, merged_at, record, kept,
       unmerged_run_id
FROM merge_undo
WHERE merge_run_id = :run_id AND from_primary_id IN :from_primary_ids
