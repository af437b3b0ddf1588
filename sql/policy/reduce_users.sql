-- Delete-user policy, every level but fully-remove: the user rows, in one rewrite per row. Marks them
-- purged (a purge batch passes :purged_at; `policy set` passes NULL and keeps each user's purge time),
-- records the level, and empties what the level removes from the row: with :anonymise = 1 (keep-statistics
-- and stricter) names, birth date, external id, expiry date and `extra` (the Alma fields outside the
-- format, such as full_name, pref_* names, gender: they can hold anything); with :remove_id = 1
-- (keep-statistics-remove-id) the primary id. A user already at this level or a stricter one is left
-- as is (:looser lists the levels below this one). Returns the ids it reduced: the segment statements
-- that follow reach only those.
-- parameters: :ids (user ids), :purged_at (time or NULL), :policy, :anonymise (0/1), :remove_id (0/1), :looser
-- expanding: ids, looser
UPDATE users
SET purged_at = COALESCE(purged_at, :purged_at),
    purge_policy = :policy,
    first_name = CASE WHEN :anonymise = 1 THEN NULL ELSE first_name END,
    middle_name = CASE WHEN :anonymise = 1 THEN NULL ELSE middle_name END,
    last_name = CASE WHEN :anonymise = 1 THEN NULL ELSE last_name END,
    birth_date = CASE WHEN :anonymise = 1 THEN NULL ELSE birth_date END,
    external_id = CASE WHEN :anonymise = 1 THEN NULL ELSE external_id END,
    expiry_date = CASE WHEN :anonymise = 1 THEN NULL ELSE expiry_date END,
    extra = CASE WHEN :anonymise = 1 THEN NULL ELSE extra END,
    primary_id = CASE WHEN :remove_id = 1 THEN NULL ELSE primary_id END
WHERE id IN :ids
  AND COALESCE(purged_at, :purged_at) IS NOT NULL
  AND (purge_policy IS NULL OR purge_policy IN :looser)
RETURNING id
