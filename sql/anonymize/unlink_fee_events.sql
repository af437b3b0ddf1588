-- Earlier job events that named an anonymised fee together with its user (FEE_WAIVED, ...) no longer
-- name the fee: the audit trail must not re-link the fee to the person.
-- parameters: :fee_ids (fees.id)
-- expanding: fee_ids
UPDATE job_events SET fee_id = NULL
WHERE fee_id IN :fee_ids
