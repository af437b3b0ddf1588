-- After their WAIVE transactions: the purged users' active fees are closed with balance 0. A credit
-- (negative balance) is never waived or closed here (the purge rules keep users holding one anyway).
-- parameters: :ids (user ids)
-- expanding: ids
UPDATE fees SET balance_minor = 0, status = 'CLOSED'
WHERE user_id IN :ids AND status = 'ACTIVE' AND balance_minor >= 0
