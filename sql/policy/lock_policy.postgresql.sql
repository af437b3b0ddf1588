-- `policy set`: wait until running purge batches commit (they hold this lock shared), so the new
-- level reaches the users they purged, and no batch starts under the old level meanwhile.
-- parameters: :lock_key (bigint, tasks.policy.POLICY_LOCK_KEY)
SELECT pg_advisory_xact_lock(:lock_key)
