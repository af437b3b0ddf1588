-- Purge candidates: live users whose purge date is before the cut-off, with every fact the purge
-- rules judge (tasks/purge/rules.py); owed_minor is net of credits (a CREDIT fee's balance is negative,
-- as in Alma's total_sum), active_credits counts the credits the library still owes; sums are cast to BIGINT so they reach Python as integers, not
-- Decimals. Correlated counts use the (user_id, status) indexes, so the
-- same statement serves the whole library and a batch re-check alike.
-- parameters: :cutoff (date: purge_date < cutoff), :restrict (1 = only :ids), :ids (user ids)
-- expanding: ids
SELECT
    u.id AS user_id,
    u.primary_id,
    u.user_group,
    u.record_type,
    u.protected,
    u.purge_date,
    (SELECT CAST(COALESCE(SUM(f.balance_minor), 0) AS BIGINT) FROM fees f
      WHERE f.user_id = u.id AND f.status = 'ACTIVE') AS owed_minor,
    (SELECT COUNT(*) FROM fees f
      WHERE f.user_id = u.id AND f.status = 'ACTIVE' AND f.balance_minor > 0) AS active_fees,
    (SELECT COUNT(*) FROM fees f WHERE f.user_id = u.id) AS all_fees,
    (SELECT COUNT(*) FROM fees f
      WHERE f.user_id = u.id AND f.status = 'ACTIVE' AND f.balance_minor < 0) AS active_credits,
    (SELECT COUNT(*) FROM loans l
      WHERE l.user_id = u.id AND l.loan_status = 'ACTIVE') AS active_loans,
    (SELECT COUNT(*) FROM requests r
      WHERE r.user_id = u.id AND r.request_status <> 'HISTORY') AS active_requests
FROM users u
WHERE u.purged_at IS NULL
  AND u.purge_date IS NOT NULL
  AND u.purge_date < :cutoff
  AND (:restrict = 0 OR u.id IN :ids)
ORDER BY u.id
