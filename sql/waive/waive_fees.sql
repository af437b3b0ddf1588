-- A waive batch's three writes as one statement, on PostgreSQL (a data-modifying WITH, which SQLite
-- lacks: there tasks/waive/steps.waive runs fee_waived_events, insert_waive_transactions and
-- close_fees one after the other, and this writes the same rows). The FEE_WAIVED audit events and the
-- WAIVE transactions come from the fee rows as they stand (all parts of one statement see one
-- snapshot, so the balances are those before the closing); the fees are closed with balance 0. One
-- statement finds the batch's fees in the index once, not three times: 482 against 773 ms (medians)
-- for a batch of ~6,800 fees at 1,000,000 users (BENCHMARKS.md, change 26).
-- parameters: :fee_ids (fees.id), :reason, :reason_json (the reason as a JSON string), :comment, :now,
--             :run_id, :created_at
-- expanding: fee_ids
WITH waived AS (
    SELECT f.id, f.user_id, f.fee_type, f.balance_minor
    FROM fees f
    WHERE f.id IN :fee_ids AND f.status = 'ACTIVE' AND f.balance_minor > 0
), events AS (
    INSERT INTO job_events (run_id, event, user_id, fee_id, amount_minor, details, created_at)
    SELECT :run_id, 'FEE_WAIVED', w.user_id, w.id, w.balance_minor,
           '{"fee_type": ' || CAST(to_json(w.fee_type) AS TEXT) || ', "reason": ' || :reason_json || '}',
           :created_at
    FROM waived w
), transactions AS (
    INSERT INTO fee_transactions (fee_id, type, amount_minor, reason, comment, transaction_time, job_run_id)
    SELECT w.id, 'WAIVE', w.balance_minor, :reason, :comment, :now, :run_id
    FROM waived w
)
UPDATE fees SET balance_minor = 0, status = 'CLOSED'
WHERE id IN :fee_ids AND status = 'ACTIVE'
