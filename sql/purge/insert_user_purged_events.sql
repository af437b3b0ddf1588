-- The USER_PURGED audit events of a purge batch, one per user, naming the policy applied (set-based).
-- parameters: :ids (user ids), :run_id, :details (the JSON text), :created_at
-- expanding: ids
INSERT INTO job_events (run_id, event, user_id, details, created_at)
SELECT :run_id, 'USER_PURGED', u.id, :details, :created_at
FROM users u
WHERE u.id IN :ids
