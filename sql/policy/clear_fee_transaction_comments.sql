-- Delete-user policy keep-statistics and stricter: see clear_fee_comments.sql.
-- parameters: :restrict (1 = only the users :ids, 0 = every purged user), :ids (user ids)
-- expanding: ids
UPDATE fee_transactions SET comment = NULL
WHERE comment IS NOT NULL
  AND fee_id IN (SELECT f.id FROM fees f JOIN users u ON u.id = f.user_id
                 WHERE u.purged_at IS NOT NULL AND (:restrict = 0 OR u.id IN :ids))
