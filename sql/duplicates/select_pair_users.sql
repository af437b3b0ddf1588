-- The users of proposed pairs, with what the direction rules and Merge Users' checks judge: protected,
-- account type, roles other than Patron, activity (loans, requests and fees ever attached), and the
-- primary id. Purged users are not found.
-- parameters: :user_ids
-- expanding: user_ids
SELECT
    u.id AS user_id,
    u.primary_id,
    u.protected,
    u.account_type,
    (SELECT COUNT(*) FROM user_roles r WHERE r.user_id = u.id AND r.role_type <> '200') AS non_patron_roles,
    (SELECT COUNT(*) FROM loans l WHERE l.user_id = u.id)
      + (SELECT COUNT(*) FROM requests q WHERE q.user_id = u.id)
      + (SELECT COUNT(*) FROM fees f WHERE f.user_id = u.id) AS activity
FROM users u
WHERE u.id IN :user_ids
  AND u.purged_at IS NULL
ORDER BY u.id
