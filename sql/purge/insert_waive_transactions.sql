-- Waive every active fee of the purged users: a WAIVE transaction for the whole balance
-- (the ledger keeps balancing: balance = original - transactions).
-- parameters: :ids (user ids), :reason, :comment, :now, :run_id
-- expanding: ids
INSERT INTO fee_transactions (fee_id, type, amount_minor, reason, comment, transaction_time, job_run_id)
SELECT f.id, 'WAIVE', f.balance_minor, :reason, :comment, :now, :run_id
FROM fees f
WHERE f.user_id IN :ids AND f.status = 'ACTIVE' AND f.balance_minor > 0
