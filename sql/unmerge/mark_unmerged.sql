-- The pair is undone: its undo record keeps who and when, not the personal data.
-- parameters: :undo_id, :run_id, :now
UPDATE merge_undo
SET unmerged_run_id = :run_id, unmerged_at = :now, record = NULL, kept = NULL
WHERE id = :undo_id AND unmerged_run_id IS NULL
