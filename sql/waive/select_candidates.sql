-- Waive candidates: one row per active fee with a balance, with the facts the waive rules judge
-- about its user (tasks/waive_rules.py). The user's total is over ALL active fees of every type (the
-- fine-type and date limits narrow only which fees are waived, never the threshold), so it is
-- aggregated once per user before the balance filter and joined back to the fees (at 1,000,000 users:
-- 5.0 s as a window over an index scan with a per-fee sub-select, 2.7 s so; BENCHMARKS.md).
-- earliest_due, the earliest due date of an active loan, is looked up only when the run leaves out
-- users with overdue loans (:need_due = 1), once per user; the rules compare it with the run time in
-- Python, because SQLite stores times as text and a text comparison gets the boundary wrong. Likewise
-- creation_time is read only when the run has a creation-date limit (:need_created = 1): a time per
-- fee row costs more to bring to Python than the column is worth otherwise. The same statement
-- serves the whole library and a batch re-check alike.
-- parameters: :need_due (1 = look up earliest_due), :need_created (1 = read creation_time),
--             :restrict (1 = only :ids), :ids (user ids)
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
    CASE WHEN :need_created = 1 THEN f.creation_time END AS creation_time,
    o.owed_minor,
    o.active_fees,
    o.earliest_due
FROM (SELECT a.user_id,
             CAST(SUM(a.balance_minor) AS BIGINT) AS owed_minor,
             COUNT(*) AS active_fees,
             CASE WHEN :need_due = 1 THEN (SELECT MIN(l.due_date) FROM loans l
                                           WHERE l.user_id = a.user_id AND l.loan_status = 'ACTIVE') END
                 AS earliest_due
      FROM fees a
      WHERE a.status = 'ACTIVE'
        AND (:restrict = 0 OR a.user_id IN :ids)
      GROUP BY a.user_id) o
JOIN users u ON u.id = o.user_id
JOIN fees f ON f.user_id = o.user_id
WHERE f.status = 'ACTIVE'
  AND f.balance_minor > 0
  AND u.purged_at IS NULL
  AND (:restrict = 0 OR u.id IN :ids)
ORDER BY u.id, f.id
