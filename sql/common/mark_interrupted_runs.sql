-- Real runs of a job still in progress (running, or paused for approval) while a new real run holds the
-- job's lock: their process died (killed, machine lost) before finishing. Batches they committed stand;
-- the new run finishes the rest.
-- parameters: :job, :now, :error
UPDATE job_runs SET status = 'INTERRUPTED', finished_at = :now, error = :error
WHERE job = :job AND status IN ('RUNNING', 'AWAITING_APPROVAL') AND NOT dry_run
