-- The pairs a merge run merged, from its audit events (they outlive the undo records): the To user's
-- row id, and both primary ids in the details.
-- parameters: :run_id
SELECT e.user_id AS to_user_id, e.details
FROM job_events e
WHERE e.run_id = :run_id AND e.event = 'USER_MERGED'
ORDER BY e.id
