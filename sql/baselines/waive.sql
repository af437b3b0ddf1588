-- The waive flow's work as one hand-written set-based transaction: the benchmark's baseline. Same
-- rules as CONTRACT.md (a user's total over all active fees decides, protected and purged users are
-- left out), same WAIVE transactions, same closed fees, same audit rows (one FEE_WAIVED per fee).
-- Statements are separated by a semicolon at the end of a line.
-- parameters: :threshold_minor, :now, :run_id, :reason, :comment

CREATE TEMPORARY TABLE bench_waive AS
SELECT f.id, f.user_id, f.balance_minor, f.fee_type
FROM fees f
JOIN users u ON u.id = f.user_id
JOIN (SELECT user_id, SUM(balance_minor) AS owed_minor FROM fees
      WHERE status = 'ACTIVE' GROUP BY user_id) o ON o.user_id = f.user_id
WHERE f.status = 'ACTIVE'
  AND f.balance_minor > 0
  AND u.purged_at IS NULL
  AND NOT u.protected
  AND o.owed_minor <= :threshold_minor;

INSERT INTO job_runs (run_id, job, status, dry_run, parameters, started_at)
VALUES (:run_id, 'waive-baseline', 'COMPLETED', FALSE, '{}', :now);

INSERT INTO fee_transactions (fee_id, type, amount_minor, reason, comment, transaction_time, job_run_id)
SELECT id, 'WAIVE', balance_minor, :reason, :comment, :now, :run_id FROM bench_waive;

UPDATE fees SET balance_minor = 0, status = 'CLOSED' WHERE id IN (SELECT id FROM bench_waive);

INSERT INTO job_events (run_id, event, user_id, fee_id, amount_minor, details, created_at)
SELECT :run_id, 'FEE_WAIVED', user_id, id, balance_minor,
       '{"fee_type": "' || fee_type || '", "reason": "' || :reason || '"}', :now
FROM bench_waive;

DROP TABLE bench_waive
