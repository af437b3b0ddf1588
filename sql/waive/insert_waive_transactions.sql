-- A WAIVE transaction for the whole balance of each fee being waived, so the ledger keeps
-- balancing (balance = original - transactions). Runs before close_fees, which zeroes the balance.
-- parameters: :fee_ids (fees.id), :reason, :comment, :now, :run_id
-- expanding: fee_ids
INSERT INTO fee_transactions (fee_id, type, amount_minor, reason, comment, transaction_time, job_run_id)
SELECT f.id, 'WAIVE', f.balance_minor, :reason, :comment, :now, :run_id
FROM fees f
WHERE f.id IN :fee_ids AND f.status = 'ACTIVE' AND f.balance_minor > 0
