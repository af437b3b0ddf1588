-- How many purged users' remains a stricter delete-user policy now reaches.
-- parameters: none
SELECT COUNT(*) FROM users WHERE purged_at IS NOT NULL
