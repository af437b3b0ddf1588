-- The demo data inserts explicit ids. SQLite needs nothing here: an INTEGER PRIMARY KEY takes
-- MAX(id) + 1 by itself. PostgreSQL's wording (sequences) is in reset_sequences.postgresql.sql.
-- Parameters: none.
SELECT 1
