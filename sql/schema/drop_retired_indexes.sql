-- Indexes earlier schema versions created and this one retires (init-db drops them; idempotent).
-- ix_users_purged_at: a purge batch's statements find their users by id, but with statistics taken
-- before the first purge (no purged users yet) the planner believed "purged_at IS NOT NULL" matched
-- one row and scanned this index instead, reading every user purged so far for each statement of each
-- batch: quadratic in the run (BENCHMARKS.md). Nothing else needs it enough to keep it.
-- parameters: none
DROP INDEX IF EXISTS ix_users_purged_at
