-- Delete-user policy keep-statistics and stricter: free-text comments on the users' fees go.
-- parameters: :ids (user ids)
-- expanding: ids
UPDATE fees SET comment = NULL
WHERE comment IS NOT NULL AND user_id IN :ids
