-- After their WAIVE transactions: the purged users' active fees are closed with balance 0.
-- parameters: :ids (user ids)
-- expanding: ids
UPDATE fees SET balance_minor = 0, status = 'CLOSED'
WHERE user_id IN :ids AND status = 'ACTIVE'
