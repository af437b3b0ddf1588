-- The demo data inserts explicit ids; move each id sequence past them so later inserts do not collide.
-- Parameters: none. setval() ignores a NULL (empty table), leaving that sequence as it was.
SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT MAX(id) FROM users));
SELECT setval(pg_get_serial_sequence('user_identifiers', 'id'), (SELECT MAX(id) FROM user_identifiers));
SELECT setval(pg_get_serial_sequence('user_addresses', 'id'), (SELECT MAX(id) FROM user_addresses));
SELECT setval(pg_get_serial_sequence('user_emails', 'id'), (SELECT MAX(id) FROM user_emails));
SELECT setval(pg_get_serial_sequence('user_phones', 'id'), (SELECT MAX(id) FROM user_phones));
SELECT setval(pg_get_serial_sequence('user_notes', 'id'), (SELECT MAX(id) FROM user_notes));
SELECT setval(pg_get_serial_sequence('user_attachments', 'id'), (SELECT MAX(id) FROM user_attachments));
SELECT setval(pg_get_serial_sequence('user_roles', 'id'), (SELECT MAX(id) FROM user_roles));
SELECT setval(pg_get_serial_sequence('user_blocks', 'id'), (SELECT MAX(id) FROM user_blocks));
SELECT setval(pg_get_serial_sequence('user_statistics', 'id'), (SELECT MAX(id) FROM user_statistics));
SELECT setval(pg_get_serial_sequence('user_proxies', 'id'), (SELECT MAX(id) FROM user_proxies));
SELECT setval(pg_get_serial_sequence('loans', 'id'), (SELECT MAX(id) FROM loans));
SELECT setval(pg_get_serial_sequence('requests', 'id'), (SELECT MAX(id) FROM requests));
SELECT setval(pg_get_serial_sequence('fees', 'id'), (SELECT MAX(id) FROM fees));
SELECT setval(pg_get_serial_sequence('fee_transactions', 'id'), (SELECT MAX(id) FROM fee_transactions));
