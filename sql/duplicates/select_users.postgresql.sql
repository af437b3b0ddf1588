-- Every user not purged, with what identifies a person: names, birth date, group, account type, and
-- the lists (emails, phones, postal codes, identifiers as TYPE:value) aggregated here, one value
-- separated from the next by the unit separator chr(31). Read in chunks (tasks/engine/selection.py).
-- parameters: :all_groups (1: every group), :groups (user-group codes)
-- expanding: groups
WITH em AS (SELECT user_id, string_agg(email_address, chr(31)) AS emails FROM user_emails GROUP BY user_id),
     ph AS (SELECT user_id, string_agg(phone_number, chr(31)) AS phones FROM user_phones GROUP BY user_id),
     po AS (SELECT user_id, string_agg(postal_code, chr(31)) AS postal_codes
            FROM user_addresses WHERE postal_code IS NOT NULL AND postal_code <> '' GROUP BY user_id),
     ids AS (SELECT user_id, string_agg(id_type || ':' || value, chr(31)) AS identifiers
             FROM user_identifiers GROUP BY user_id)
SELECT
    u.id AS user_id,
    u.primary_id,
    u.first_name,
    u.middle_name,
    u.last_name,
    u.birth_date,
    u.user_group,
    u.account_type,
    em.emails,
    ph.phones,
    po.postal_codes,
    ids.identifiers
FROM users u
LEFT JOIN em ON em.user_id = u.id
LEFT JOIN ph ON ph.user_id = u.id
LEFT JOIN po ON po.user_id = u.id
LEFT JOIN ids ON ids.user_id = u.id
WHERE u.purged_at IS NULL
  AND (:all_groups = 1 OR u.user_group IN :groups)
ORDER BY u.id
