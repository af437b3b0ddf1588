-- The FEE_WAIVED audit events of a waive batch, one per fee (set-based: one statement per chunk of
-- fees, not one row per fee sent from Python); runs before close_fees zeroes the balances. details is
-- {"fee_type": <the fee type>, "reason": <the reason>} with the fee type JSON-quoted by the database (PostgreSQL: to_json).
-- parameters: :fee_ids (fees.id), :reason_json (the reason as a JSON string), :run_id, :created_at
-- expanding: fee_ids
INSERT INTO job_events (run_id, event, user_id, fee_id, amount_minor, details, created_at)
SELECT :run_id, 'FEE_WAIVED', f.user_id, f.id, f.balance_minor,
       '{"fee_type": ' || CAST(to_json(f.fee_type) AS TEXT) || ', "reason": ' || :reason_json || '}', :created_at
FROM fees f
WHERE f.id IN :fee_ids AND f.status = 'ACTIVE' AND f.balance_minor > 0
