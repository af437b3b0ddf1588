-- Delete-user policy keep-statistics-remove-id and stricter: the purged user's primary id goes.
-- parameters: :restrict (1 = only the users :ids, 0 = every purged user), :ids (user ids)
-- expanding: ids
UPDATE users SET primary_id = NULL
WHERE purged_at IS NOT NULL AND primary_id IS NOT NULL AND (:restrict = 0 OR id IN :ids)
