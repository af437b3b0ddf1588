-- The purge flow's work as one hand-written set-based transaction: the benchmark's baseline, what the
-- database itself can do. Same eligibility (CONTRACT.md), same waive transactions, same default
-- delete-user policy (keep-statistics-remove-id, docs/delete-user-policy.md), same audit rows.
-- Statements are separated by a semicolon at the end of a line.
-- parameters: :cutoff (purge_date < cutoff), :max_owed_minor, :now, :run_id, :policy, :reason, :comment

CREATE TEMPORARY TABLE bench_purge AS
SELECT u.id, u.primary_id
FROM users u
WHERE u.purged_at IS NULL
  AND u.purge_date < :cutoff
  AND NOT u.protected
  AND NOT EXISTS (SELECT 1 FROM loans l WHERE l.user_id = u.id AND l.loan_status = 'ACTIVE')
  AND NOT EXISTS (SELECT 1 FROM requests r WHERE r.user_id = u.id AND r.request_status <> 'HISTORY')
  AND COALESCE((SELECT SUM(f.balance_minor) FROM fees f
                WHERE f.user_id = u.id AND f.status = 'ACTIVE'), 0) <= :max_owed_minor;

INSERT INTO job_runs (run_id, job, status, dry_run, parameters, started_at)
VALUES (:run_id, 'purge-baseline', 'COMPLETED', FALSE, '{}', :now);

INSERT INTO job_events (run_id, event, user_id, amount_minor, details, created_at)
SELECT :run_id, 'FEES_WAIVED', f.user_id, SUM(f.balance_minor),
       '{"fees": ' || CAST(COUNT(*) AS VARCHAR(20)) || '}', :now
FROM fees f JOIN bench_purge p ON p.id = f.user_id
WHERE f.status = 'ACTIVE' AND f.balance_minor > 0
GROUP BY f.user_id;

INSERT INTO fee_transactions (fee_id, type, amount_minor, reason, comment, transaction_time, job_run_id)
SELECT f.id, 'WAIVE', f.balance_minor, :reason, :comment, :now, :run_id
FROM fees f JOIN bench_purge p ON p.id = f.user_id
WHERE f.status = 'ACTIVE' AND f.balance_minor > 0;

UPDATE fees SET balance_minor = 0, status = 'CLOSED'
WHERE status = 'ACTIVE' AND user_id IN (SELECT id FROM bench_purge);

UPDATE users SET purged_at = :now, purge_policy = :policy
WHERE id IN (SELECT id FROM bench_purge);

INSERT INTO job_events (run_id, event, user_id, details, created_at)
SELECT :run_id, 'USER_PURGED', id, '{"policy": "' || :policy || '"}', :now FROM bench_purge;

DELETE FROM user_proxies WHERE proxy_for_primary_id IN (SELECT primary_id FROM bench_purge);
DELETE FROM user_identifiers WHERE user_id IN (SELECT id FROM bench_purge);
DELETE FROM user_addresses WHERE user_id IN (SELECT id FROM bench_purge);
DELETE FROM user_emails WHERE user_id IN (SELECT id FROM bench_purge);
DELETE FROM user_phones WHERE user_id IN (SELECT id FROM bench_purge);
DELETE FROM user_notes WHERE user_id IN (SELECT id FROM bench_purge);
DELETE FROM user_attachments WHERE user_id IN (SELECT id FROM bench_purge);
DELETE FROM user_roles WHERE user_id IN (SELECT id FROM bench_purge);
DELETE FROM user_blocks WHERE user_id IN (SELECT id FROM bench_purge);
DELETE FROM user_proxies WHERE user_id IN (SELECT id FROM bench_purge);

UPDATE users
SET first_name = NULL, middle_name = NULL, last_name = NULL, birth_date = NULL,
    external_id = NULL, expiry_date = NULL, primary_id = NULL, extra = NULL
WHERE id IN (SELECT id FROM bench_purge);

UPDATE fees SET comment = NULL
WHERE comment IS NOT NULL AND user_id IN (SELECT id FROM bench_purge);

UPDATE fee_transactions SET comment = NULL
WHERE comment IS NOT NULL
  AND fee_id IN (SELECT f.id FROM fees f JOIN bench_purge p ON p.id = f.user_id);

UPDATE user_statistics SET statistic_note = NULL
WHERE statistic_note IS NOT NULL AND user_id IN (SELECT id FROM bench_purge);

-- What the kept rows carried beyond the typed columns (Alma's fields outside the format) goes too.
UPDATE loans SET extra = NULL WHERE extra IS NOT NULL AND user_id IN (SELECT id FROM bench_purge);
UPDATE requests SET extra = NULL WHERE extra IS NOT NULL AND user_id IN (SELECT id FROM bench_purge);
UPDATE fees SET extra = NULL WHERE extra IS NOT NULL AND user_id IN (SELECT id FROM bench_purge);
UPDATE user_statistics SET extra = NULL WHERE extra IS NOT NULL AND user_id IN (SELECT id FROM bench_purge);
UPDATE fee_transactions SET extra = NULL
WHERE extra IS NOT NULL
  AND fee_id IN (SELECT f.id FROM fees f JOIN bench_purge p ON p.id = f.user_id);

DROP TABLE bench_purge
