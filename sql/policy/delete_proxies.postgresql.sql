-- Delete-user policy, every level: the proxy rows of the users being reduced (they are someone's
-- proxy) and those naming them (someone is their proxy). Two purge batches running at once can share
-- such rows (a proxy in one batch for a user in the other). Deleted kind by kind, they were locked in
-- opposite orders and the batches deadlocked; locked up front, the second batch waited for the whole of
-- the first (both seen at 1,000,000 users, BENCHMARKS.md). So they are locked in id order, and as the
-- last statement of the batch: a batch waits at most for the other's last statement and commit.
-- parameters: :ids (user ids), :primary_ids (their primary ids, read before they were removed)
-- expanding: ids, primary_ids
DELETE FROM user_proxies
WHERE id IN (SELECT id FROM user_proxies
             WHERE user_id IN :ids OR proxy_for_primary_id IN :primary_ids
             ORDER BY id
             FOR UPDATE)
