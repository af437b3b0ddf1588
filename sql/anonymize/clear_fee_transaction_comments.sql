-- The free-text comments on the transactions of anonymised fees go, and what they carried beyond the
-- typed columns (`extra`, the Alma format's fields kept as loaded); amounts, types, reasons and times
-- stay: the ledger still balances.
-- parameters: :fee_ids (fees.id)
-- expanding: fee_ids
UPDATE fee_transactions SET comment = NULL, extra = NULL
WHERE fee_id IN :fee_ids AND (comment IS NOT NULL OR extra IS NOT NULL)
