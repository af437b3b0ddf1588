-- Delete-user policy keep-statistics and stricter: free-text notes on the users' statistics go.
-- parameters: :ids (user ids)
-- expanding: ids
UPDATE user_statistics SET statistic_note = NULL
WHERE statistic_note IS NOT NULL AND user_id IN :ids
