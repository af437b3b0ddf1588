-- Delete-user policy keep-statistics and stricter: the statistical categories stay, their free-text
-- notes (which may name the person) go.
-- parameters: :restrict (1 = only the users :ids, 0 = every purged user), :ids (user ids)
-- expanding: ids
UPDATE user_statistics SET statistic_note = NULL
WHERE statistic_note IS NOT NULL
  AND user_id IN (SELECT id FROM users WHERE purged_at IS NOT NULL AND (:restrict = 0 OR id IN :ids))
