-- Delete-user policy keep-statistics and stricter: free-text comments on the users' fee transactions go.
-- parameters: :ids (user ids)
-- expanding: ids
UPDATE fee_transactions SET comment = NULL
WHERE comment IS NOT NULL AND fee_id IN (SELECT id FROM fees WHERE user_id IN :ids)
