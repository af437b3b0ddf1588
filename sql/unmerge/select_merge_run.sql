-- The job run the operator named, to check it is a real Merge Users run.
-- parameters: :run_id
SELECT run_id, job, dry_run, status FROM job_runs WHERE run_id = :run_id
