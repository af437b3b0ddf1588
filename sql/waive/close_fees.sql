-- After their WAIVE transactions: the waived fees are closed with balance 0.
-- parameters: :fee_ids (fees.id)
-- expanding: fee_ids
UPDATE fees SET balance_minor = 0, status = 'CLOSED'
WHERE id IN :fee_ids AND status = 'ACTIVE'
