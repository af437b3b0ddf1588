-- The users named in a chunk of merge pairs (purged users count as not found), with what the merge
-- rules judge (protected, account type, roles other than Patron) and how many of each kind that
-- moves whole they hold. Identifiers, roles and proxies are listed by select_clash_items.
-- parameters: :primary_ids (the pairs' From and To users)
-- expanding: primary_ids
SELECT
    u.id AS user_id,
    u.primary_id,
    u.protected,
    u.account_type,
    (SELECT COUNT(*) FROM user_roles r WHERE r.user_id = u.id AND r.role_type <> '200') AS non_patron_roles,
    (SELECT COUNT(*) FROM loans l WHERE l.user_id = u.id) AS loans,
    (SELECT COUNT(*) FROM requests r WHERE r.user_id = u.id) AS requests,
    (SELECT COUNT(*) FROM fees f WHERE f.user_id = u.id) AS fees,
    (SELECT COUNT(*) FROM fee_transactions t JOIN fees f ON f.id = t.fee_id WHERE f.user_id = u.id) AS fee_transactions,
    (SELECT COUNT(*) FROM user_addresses a WHERE a.user_id = u.id) AS addresses,
    (SELECT COUNT(*) FROM user_emails e WHERE e.user_id = u.id) AS emails,
    (SELECT COUNT(*) FROM user_phones p WHERE p.user_id = u.id) AS phones,
    (SELECT COUNT(*) FROM user_notes n WHERE n.user_id = u.id) AS notes,
    (SELECT COUNT(*) FROM user_blocks b WHERE b.user_id = u.id) AS blocks,
    (SELECT COUNT(*) FROM user_statistics s WHERE s.user_id = u.id) AS statistics,
    (SELECT COUNT(*) FROM user_attachments a WHERE a.user_id = u.id) AS attachments
FROM users u
WHERE u.primary_id IN :primary_ids
  AND u.purged_at IS NULL
ORDER BY u.id
