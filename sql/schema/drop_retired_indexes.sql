-- Indexes the schema before migrations created and revision 0001 leaves out: dropped when init-db adopts a
-- pre-migrations database (tasks/db/migrate.py; the old init-db dropped them at every run).
-- ix_users_purged_at: a purge batch's statements find their users by id, but with statistics taken
-- before the first purge (no purged users yet) the planner believed "purged_at IS NOT NULL" matched
-- one row and scanned this index instead, reading every user purged so far for each statement of each
-- batch: quadratic in the run (BENCHMARKS.md). Nothing else needs it enough to keep it.
-- parameters: none
DROP INDEX IF EXISTS ix_users_purged_at
