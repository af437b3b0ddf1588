-- The FEES_WAIVED audit events of a purge batch, one per user with active fees to waive: how many
-- and how much. Set-based (one statement per batch, not one row per user sent from Python); runs before
-- close_active_fees zeroes the balances. details is the JSON json.dumps({"fees": n}) would write.
-- parameters: :ids (user ids), :run_id, :created_at
-- expanding: ids
INSERT INTO job_events (run_id, event, user_id, amount_minor, details, created_at)
SELECT :run_id, 'FEES_WAIVED', f.user_id, SUM(f.balance_minor),
       '{"fees": ' || CAST(COUNT(*) AS VARCHAR(20)) || '}', :created_at
FROM fees f
WHERE f.user_id IN :ids AND f.status = 'ACTIVE' AND f.balance_minor > 0
GROUP BY f.user_id
