-- Lock the active fees of a batch's users before their guards are re-read: a payment of one of
-- them (an UPDATE of the fee, which takes no lock on the user row) waits until the batch commits.
-- parameters: :ids (user ids)
-- expanding: ids
SELECT id FROM fees WHERE user_id IN :ids AND status = 'ACTIVE' ORDER BY id FOR UPDATE
