-- Lock the active fees of the users a batch will change, after the users themselves. A payment is an
-- UPDATE of the fee alone (it takes no lock on the user row), so without this it could slip in between
-- the batch's WAIVE transactions and its closing of the fee, and the fee would be waived and paid.
-- parameters: :ids (user ids)
-- expanding: ids
SELECT id FROM fees WHERE user_id IN :ids AND status = 'ACTIVE' ORDER BY id FOR UPDATE
