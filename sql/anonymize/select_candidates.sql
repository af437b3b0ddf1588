-- Anonymise candidates: one row per returned loan, request in history and closed fee without balance
-- still linked to a user, that ended before its kind's cut-off, with the facts the rules judge
-- (tasks/anonymize/rules.py): kind (1 loan, 2 request, 3 fee), ended (return date, request date,
-- last transaction or else creation time), the row's library, the user's group and protection, and for
-- loans with :keep_last > 0 how many of the user's returned loans are more recent (newer_loans).
-- A kind not asked for (:do_loans = 0, ...) yields no rows. Active loans, active requests and fees
-- that are active, in dispute or carry a balance are never candidates. Purged users kept under a
-- keep-* delete-user policy still hold their history, so they are candidates too. The same statement
-- serves the whole library and a batch re-check alike. Ordered by user, so a real run's first batches
-- start while the rest is still read and nothing holds the whole selection (tasks/engine/selection.py;
-- at 1,000,000 users PostgreSQL's sort adds 1.3 s to a 3.8 s statement).
-- parameters: :do_loans, :loan_cutoff, :do_requests, :request_cutoff, :do_fees, :fee_cutoff (ended < cutoff),
--             :keep_last, :restrict (1 = only :ids), :ids (user ids)
-- expanding: ids
SELECT l.user_id, u.primary_id, u.user_group, u.protected, 1 AS kind, l.id AS row_id,
       l.return_date AS ended, l.due_date AS due, l.library,
       CASE WHEN :keep_last > 0 THEN
           (SELECT COUNT(*) FROM loans n
             WHERE n.user_id = l.user_id AND n.loan_status = 'COMPLETE'
               AND (n.return_date > l.return_date OR (n.return_date = l.return_date AND n.id > l.id)))
       END AS newer_loans
FROM loans l
JOIN users u ON u.id = l.user_id
WHERE :do_loans = 1
  AND l.loan_status = 'COMPLETE'
  AND l.return_date < :loan_cutoff
  AND (:restrict = 0 OR l.user_id IN :ids)
UNION ALL
SELECT r.user_id, u.primary_id, u.user_group, u.protected, 2, r.id,
       r.request_date, NULL, r.pickup_location_library, NULL
FROM requests r
JOIN users u ON u.id = r.user_id
WHERE :do_requests = 1
  AND r.request_status = 'HISTORY'
  AND r.request_date < :request_cutoff
  AND (:restrict = 0 OR r.user_id IN :ids)
UNION ALL
SELECT c.user_id, u.primary_id, u.user_group, u.protected, 3, c.id, c.ended, NULL, c.owner, NULL
FROM (SELECT f.id, f.user_id, f.owner,
             COALESCE((SELECT MAX(t.transaction_time) FROM fee_transactions t WHERE t.fee_id = f.id),
                      f.creation_time) AS ended
      FROM fees f
      WHERE :do_fees = 1
        AND f.status = 'CLOSED'
        AND f.balance_minor = 0
        AND f.user_id IS NOT NULL
        AND (:restrict = 0 OR f.user_id IN :ids)) c
JOIN users u ON u.id = c.user_id
WHERE c.ended < :fee_cutoff
ORDER BY user_id, kind, row_id
