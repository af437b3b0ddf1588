-- One HISTORY_ANONYMIZED audit event per batch: how many rows of each kind and how many users, never
-- which users (user_id stays NULL). details is {"fees": n, "loans": n, "requests": n, "users": n}.
-- parameters: :run_id, :details (JSON text), :created_at
INSERT INTO job_events (run_id, event, user_id, fee_id, amount_minor, details, created_at)
VALUES (:run_id, 'HISTORY_ANONYMIZED', NULL, NULL, NULL, :details, :created_at)
