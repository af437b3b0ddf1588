-- The free-text comments on the transactions of anonymised fees go (amounts, types, reasons and
-- times stay: the ledger still balances).
-- parameters: :fee_ids (fees.id)
-- expanding: fee_ids
UPDATE fee_transactions SET comment = NULL
WHERE fee_id IN :fee_ids AND comment IS NOT NULL
