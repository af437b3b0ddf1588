-- How many users the library holds (not purged): the base of the purge blast-radius guard.
-- parameters: none
SELECT COUNT(*) FROM users WHERE purged_at IS NULL
