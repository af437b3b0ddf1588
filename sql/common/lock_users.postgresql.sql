-- Lock the users a batch will change before it re-reads their guards. New loans, requests and
-- fees for these users (their foreign keys take KEY SHARE locks) wait until the batch commits.
-- parameters: :ids (user ids)
-- expanding: ids
SELECT id FROM users WHERE id IN :ids ORDER BY id FOR UPDATE
