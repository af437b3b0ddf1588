-- Delete-user policy keep-statistics and stricter: what the users' loans carried beyond the typed
-- columns (Alma fields outside the format, kept as loaded in `extra`; they can hold anything) goes.
-- parameters: :ids (user ids)
-- expanding: ids
UPDATE loans SET extra = NULL
WHERE extra IS NOT NULL AND user_id IN :ids
