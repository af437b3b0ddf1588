-- The anonymize flow's work as one hand-written set-based transaction: the benchmark's baseline, what
-- the database itself can do. Same scope (CONTRACT.md: returned loans, requests in history and
-- closed fees without balance that ended before their kind's cut-off, protected users left out, the K
-- most recently returned loans of each user kept), the same snapshot columns, comments cleared, fee ids
-- cleared from earlier events, and one HISTORY_ANONYMIZED audit row with the counts (the flow writes one per batch).
-- The statistical categories each unlinked row keeps (anon_statistics, a JSON list) are the one thing the
-- dialects word differently (json_group_array / json_agg): tasks/devtools/baselines.py sets them after
-- this script, from the bench_anon_* tables' user ids, with the construct SQLAlchemy renders per dialect
-- (tasks/db/statements.statistics_of), and then drops those tables.
-- Statements are separated by a semicolon at the end of a line.
-- parameters: :loan_cutoff, :request_cutoff, :fee_cutoff (dates), :keep_last, :now, :run_id

CREATE TEMPORARY TABLE bench_anon_loans AS
SELECT l.id, l.user_id
FROM loans l JOIN users u ON u.id = l.user_id
WHERE l.loan_status = 'COMPLETE'
  AND l.return_date < :loan_cutoff
  AND NOT u.protected
  AND (:keep_last = 0
       OR (SELECT COUNT(*) FROM loans n
            WHERE n.user_id = l.user_id AND n.loan_status = 'COMPLETE'
              AND (n.return_date > l.return_date OR (n.return_date = l.return_date AND n.id > l.id))) >= :keep_last);

CREATE TEMPORARY TABLE bench_anon_requests AS
SELECT r.id, r.user_id
FROM requests r JOIN users u ON u.id = r.user_id
WHERE r.request_status = 'HISTORY'
  AND r.request_date < :request_cutoff
  AND NOT u.protected;

CREATE TEMPORARY TABLE bench_anon_fees AS
SELECT f.id, f.user_id
FROM fees f JOIN users u ON u.id = f.user_id
WHERE f.status = 'CLOSED'
  AND f.balance_minor = 0
  AND NOT u.protected
  AND COALESCE((SELECT MAX(t.transaction_time) FROM fee_transactions t WHERE t.fee_id = f.id),
               f.creation_time) < :fee_cutoff;

INSERT INTO job_runs (run_id, job, status, dry_run, parameters, started_at)
VALUES (:run_id, 'anonymize-baseline', 'COMPLETED', FALSE, '{}', :now);

INSERT INTO job_events (run_id, event, details, created_at)
SELECT :run_id, 'HISTORY_ANONYMIZED',
       '{"fees": ' || CAST((SELECT COUNT(*) FROM bench_anon_fees) AS VARCHAR(20))
       || ', "loans": ' || CAST((SELECT COUNT(*) FROM bench_anon_loans) AS VARCHAR(20))
       || ', "requests": ' || CAST((SELECT COUNT(*) FROM bench_anon_requests) AS VARCHAR(20))
       || ', "users": ' || CAST((SELECT COUNT(*) FROM (SELECT user_id FROM bench_anon_loans UNION
                                                       SELECT user_id FROM bench_anon_requests UNION
                                                       SELECT user_id FROM bench_anon_fees) a) AS VARCHAR(20)) || '}',
       :now;

UPDATE fee_transactions SET comment = NULL, extra = NULL
WHERE (comment IS NOT NULL OR extra IS NOT NULL) AND fee_id IN (SELECT id FROM bench_anon_fees);

UPDATE job_events SET fee_id = NULL
WHERE fee_id IN (SELECT id FROM bench_anon_fees);

UPDATE loans
SET anon_user_group = u.user_group, anon_record_type = u.record_type, anon_account_type = u.account_type,
    anonymized_at = :now, extra = NULL,
    user_id = NULL
FROM users u
WHERE u.id = loans.user_id AND loans.id IN (SELECT id FROM bench_anon_loans);

UPDATE requests
SET anon_user_group = u.user_group, anon_record_type = u.record_type, anon_account_type = u.account_type,
    anonymized_at = :now, extra = NULL,
    user_id = NULL
FROM users u
WHERE u.id = requests.user_id AND requests.id IN (SELECT id FROM bench_anon_requests);

UPDATE fees
SET anon_user_group = u.user_group, anon_record_type = u.record_type, anon_account_type = u.account_type,
    anonymized_at = :now, extra = NULL,
    comment = NULL,
    user_id = NULL
FROM users u
WHERE u.id = fees.user_id AND fees.id IN (SELECT id FROM bench_anon_fees)
