-- Delete-user policy keep-statistics and stricter: what the users' fee transactions carried beyond the
-- typed columns (Alma fields outside the format, kept as loaded in `extra`, e.g. created_by) goes.
-- parameters: :ids (user ids)
-- expanding: ids
UPDATE fee_transactions SET extra = NULL
WHERE extra IS NOT NULL AND fee_id IN (SELECT id FROM fees WHERE user_id IN :ids)
