-- Waive candidates: one row per active fee with a balance, with the facts the waive rules judge
-- about its user (tasks/waive_rules.py). The user's total is over ALL active fees of every type, so
-- it is a correlated sum rather than a sum of the rows (the fine-type and date limits narrow only
-- which fees are waived, never the threshold). earliest_due is the earliest due date of an active
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
    (SELECT COALESCE(SUM(a.balance_minor), 0) FROM fees a
      WHERE a.user_id = u.id AND a.status = 'ACTIVE') AS owed_minor,
    (SELECT COUNT(*) FROM fees a
      WHERE a.user_id = u.id AND a.status = 'ACTIVE') AS active_fees,
    (SELECT MIN(l.due_date) FROM loans l
      WHERE l.user_id = u.id AND l.loan_status = 'ACTIVE') AS earliest_due
FROM fees f
JOIN users u ON u.id = f.user_id
WHERE f.status = 'ACTIVE'
  AND f.balance_minor > 0
  AND u.purged_at IS NULL
  AND (:restrict = 0 OR u.id IN :ids)
ORDER BY u.id, f.id
