-- Delete-user policy keep-statistics and stricter: free-text comments on a purged user's fees and
-- fee transactions may name the person; amounts, types and dates stay for the ledger.
-- parameters: :restrict (1 = only the users :ids, 0 = every purged user), :ids (user ids)
-- expanding: ids
UPDATE fees SET comment = NULL
WHERE comment IS NOT NULL
  AND user_id IN (SELECT id FROM users WHERE purged_at IS NOT NULL AND (:restrict = 0 OR id IN :ids))
