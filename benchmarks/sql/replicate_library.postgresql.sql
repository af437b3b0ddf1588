-- Grow a demo library to :copies times its size on PostgreSQL: copy k (1 .. :copies - 1) of every user
-- with everything attached, ids shifted past the original's, unique codes suffixed "-k", and birth
-- dates moved by k days so duplicates stay pairs within their copy instead of meeting across copies.
-- Every copy is the same realistic library (tasks/devtools/demo/), so per-user shares (loans, fees,
-- purgeable users, duplicates) are exactly the original's. Used when building N users with
-- make_demo_library itself would take longer than the benchmark (benchmarks/run.py --replicate-from).
-- Statements are separated by a semicolon at the end of a line.
-- parameters: :copies

CREATE TEMPORARY TABLE bench_copies AS SELECT k FROM generate_series(1, :copies - 1) AS k;

CREATE TEMPORARY TABLE bench_offsets AS SELECT
    (SELECT MAX(id) FROM users) AS users,
    (SELECT COALESCE(MAX(id), 0) FROM user_identifiers) AS user_identifiers,
    (SELECT COALESCE(MAX(id), 0) FROM user_addresses) AS user_addresses,
    (SELECT COALESCE(MAX(id), 0) FROM user_emails) AS user_emails,
    (SELECT COALESCE(MAX(id), 0) FROM user_phones) AS user_phones,
    (SELECT COALESCE(MAX(id), 0) FROM user_notes) AS user_notes,
    (SELECT COALESCE(MAX(id), 0) FROM user_attachments) AS user_attachments,
    (SELECT COALESCE(MAX(id), 0) FROM user_roles) AS user_roles,
    (SELECT COALESCE(MAX(id), 0) FROM user_blocks) AS user_blocks,
    (SELECT COALESCE(MAX(id), 0) FROM user_statistics) AS user_statistics,
    (SELECT COALESCE(MAX(id), 0) FROM user_proxies) AS user_proxies,
    (SELECT COALESCE(MAX(id), 0) FROM loans) AS loans,
    (SELECT COALESCE(MAX(id), 0) FROM requests) AS requests,
    (SELECT COALESCE(MAX(id), 0) FROM fees) AS fees,
    (SELECT COALESCE(MAX(id), 0) FROM fee_transactions) AS fee_transactions;

INSERT INTO users (id, primary_id, first_name, middle_name, last_name, user_group, record_type, account_type,
                   status, expiry_date, purge_date, birth_date, external_id, protected, purged_at, purge_policy)
SELECT t.id + c.k * o.users, t.primary_id || '-' || c.k, t.first_name, t.middle_name, t.last_name, t.user_group,
       t.record_type, t.account_type, t.status, t.expiry_date, t.purge_date, t.birth_date + c.k, t.external_id,
       t.protected, t.purged_at, t.purge_policy
FROM users t CROSS JOIN bench_copies c CROSS JOIN bench_offsets o;

INSERT INTO user_identifiers (id, user_id, id_type, value, status, note, segment_type)
SELECT t.id + c.k * o.user_identifiers, t.user_id + c.k * o.users, t.id_type, t.value || '-' || c.k, t.status,
       t.note, t.segment_type
FROM user_identifiers t CROSS JOIN bench_copies c CROSS JOIN bench_offsets o;

INSERT INTO user_addresses (id, user_id, line1, line2, line3, line4, line5, city, state_province, postal_code,
                            country, address_note, start_date, end_date, address_types, preferred, segment_type)
SELECT t.id + c.k * o.user_addresses, t.user_id + c.k * o.users, t.line1, t.line2, t.line3, t.line4, t.line5,
       t.city, t.state_province, t.postal_code, t.country, t.address_note, t.start_date, t.end_date,
       t.address_types, t.preferred, t.segment_type
FROM user_addresses t CROSS JOIN bench_copies c CROSS JOIN bench_offsets o;

INSERT INTO user_emails (id, user_id, email_address, description, email_types, preferred, segment_type)
SELECT t.id + c.k * o.user_emails, t.user_id + c.k * o.users, t.email_address, t.description, t.email_types,
       t.preferred, t.segment_type
FROM user_emails t CROSS JOIN bench_copies c CROSS JOIN bench_offsets o;

INSERT INTO user_phones (id, user_id, phone_number, phone_types, preferred, preferred_sms, segment_type)
SELECT t.id + c.k * o.user_phones, t.user_id + c.k * o.users, t.phone_number, t.phone_types, t.preferred,
       t.preferred_sms, t.segment_type
FROM user_phones t CROSS JOIN bench_copies c CROSS JOIN bench_offsets o;

INSERT INTO user_notes (id, user_id, note_type, note_text, user_viewable, popup_note, created_by, created_date,
                        segment_type)
SELECT t.id + c.k * o.user_notes, t.user_id + c.k * o.users, t.note_type, t.note_text, t.user_viewable,
       t.popup_note, t.created_by, t.created_date, t.segment_type
FROM user_notes t CROSS JOIN bench_copies c CROSS JOIN bench_offsets o;

INSERT INTO user_attachments (id, user_id, file_name, type, notes, content)
SELECT t.id + c.k * o.user_attachments, t.user_id + c.k * o.users, t.file_name, t.type, t.notes, t.content
FROM user_attachments t CROSS JOIN bench_copies c CROSS JOIN bench_offsets o;

INSERT INTO user_roles (id, user_id, role_type, scope, status)
SELECT t.id + c.k * o.user_roles, t.user_id + c.k * o.users, t.role_type, t.scope, t.status
FROM user_roles t CROSS JOIN bench_copies c CROSS JOIN bench_offsets o;

INSERT INTO user_blocks (id, user_id, block_type, block_description, block_status, block_note, created_by,
                         created_date, expiry_date, segment_type)
SELECT t.id + c.k * o.user_blocks, t.user_id + c.k * o.users, t.block_type, t.block_description, t.block_status,
       t.block_note, t.created_by, t.created_date, t.expiry_date, t.segment_type
FROM user_blocks t CROSS JOIN bench_copies c CROSS JOIN bench_offsets o;

INSERT INTO user_statistics (id, user_id, statistic_category, category_type, statistic_note, segment_type)
SELECT t.id + c.k * o.user_statistics, t.user_id + c.k * o.users, t.statistic_category, t.category_type,
       t.statistic_note, t.segment_type
FROM user_statistics t CROSS JOIN bench_copies c CROSS JOIN bench_offsets o;

INSERT INTO user_proxies (id, user_id, proxy_for_primary_id)
SELECT t.id + c.k * o.user_proxies, t.user_id + c.k * o.users, t.proxy_for_primary_id || '-' || c.k
FROM user_proxies t CROSS JOIN bench_copies c CROSS JOIN bench_offsets o;

INSERT INTO loans (id, user_id, loan_id, item_barcode, title, loan_date, due_date, return_date, loan_status,
                   process_status, library)
SELECT t.id + c.k * o.loans, t.user_id + c.k * o.users, t.loan_id || '-' || c.k, t.item_barcode, t.title,
       t.loan_date, t.due_date, t.return_date, t.loan_status, t.process_status, t.library
FROM loans t CROSS JOIN bench_copies c CROSS JOIN bench_offsets o;

INSERT INTO requests (id, user_id, request_id, request_type, request_status, title, request_date,
                      pickup_location_library)
SELECT t.id + c.k * o.requests, t.user_id + c.k * o.users, t.request_id || '-' || c.k, t.request_type,
       t.request_status, t.title, t.request_date, t.pickup_location_library
FROM requests t CROSS JOIN bench_copies c CROSS JOIN bench_offsets o;

INSERT INTO fees (id, user_id, fee_id, fee_type, status, balance_minor, original_amount_minor, creation_time,
                  comment, owner, barcode, title)
SELECT t.id + c.k * o.fees, t.user_id + c.k * o.users, t.fee_id || '-' || c.k, t.fee_type, t.status,
       t.balance_minor, t.original_amount_minor, t.creation_time, t.comment, t.owner, t.barcode, t.title
FROM fees t CROSS JOIN bench_copies c CROSS JOIN bench_offsets o;

INSERT INTO fee_transactions (id, fee_id, type, amount_minor, reason, comment, transaction_time, job_run_id)
SELECT t.id + c.k * o.fee_transactions, t.fee_id + c.k * o.fees, t.type, t.amount_minor, t.reason, t.comment,
       t.transaction_time, t.job_run_id
FROM fee_transactions t CROSS JOIN bench_copies c CROSS JOIN bench_offsets o;

DROP TABLE bench_copies;

DROP TABLE bench_offsets
