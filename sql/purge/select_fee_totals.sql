-- Per user: how many active fees with a balance, and their sum (for the FEES_WAIVED events).
-- parameters: :ids (user ids)
-- expanding: ids
SELECT f.user_id, COUNT(*) AS fees, SUM(f.balance_minor) AS amount_minor
FROM fees f
WHERE f.user_id IN :ids AND f.status = 'ACTIVE' AND f.balance_minor > 0
GROUP BY f.user_id
