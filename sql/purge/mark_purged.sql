-- Mark users as purged; the delete-user policy then decides what of them remains.
-- parameters: :ids (user ids), :now, :policy
-- expanding: ids
UPDATE users SET purged_at = :now, purge_policy = :policy
WHERE id IN :ids AND purged_at IS NULL
