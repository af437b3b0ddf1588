-- The most recent job runs, newest first, optionally of one job: what `python -m flows history` shows.
-- parameters: :job (job name, or NULL for every job), :limit (how many runs)
SELECT run_id, job, flow_run_id, status, dry_run, as_of, parameters, summary,
       started_at, finished_at, approved_by, approval_note, error
FROM job_runs
WHERE (:job IS NULL OR job = :job)
ORDER BY started_at DESC, run_id DESC
LIMIT :limit
