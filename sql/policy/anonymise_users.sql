-- Delete-user policy keep-statistics and stricter: the purged user's row keeps only statistical
-- fields (user group, record type, account type, status, purge date); the fee comments go too.
-- parameters: :restrict (1 = only the users :ids, 0 = every purged user), :ids (user ids)
-- expanding: ids
UPDATE users
SET first_name = NULL, middle_name = NULL, last_name = NULL, birth_date = NULL,
    external_id = NULL, expiry_date = NULL
WHERE purged_at IS NOT NULL AND (:restrict = 0 OR id IN :ids)
