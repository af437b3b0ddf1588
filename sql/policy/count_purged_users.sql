-- How many purged users' remains a stricter delete-user policy now reaches: those kept under a
-- looser level.
-- parameters: :looser (the levels looser than the new one)
-- expanding: looser
SELECT COUNT(*) FROM users WHERE purged_at IS NOT NULL AND purge_policy IN :looser
