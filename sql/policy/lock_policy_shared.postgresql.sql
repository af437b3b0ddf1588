-- A purge batch holds the delete-user policy steady until it commits: `policy set` takes the same
-- advisory lock exclusively, so it waits for running batches and then reaches their users too.
-- parameters: :lock_key (bigint, tasks.policy.POLICY_LOCK_KEY)
SELECT pg_advisory_xact_lock_shared(:lock_key)
