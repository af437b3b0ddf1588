"""A load writes its rows without the foreign-key check of each row where those checks cannot fail
(every row links to a parent the same chunk has just inserted) and nothing else would be skipped with
them (tasks/alma/load.py, `_links_by_construction`): on PostgreSQL with `session_replication_role`
around each chunk's COPYs, where the library's own triggers, rules and foreign keys keep every check,
and so does a role that may not set it; on SQLite with `PRAGMA foreign_keys` off for the file's
transaction, where a foreign key of the library's keeps every check, and the connection enforces
them again afterwards."""
from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import make_url

from tasks.alma import load
from tasks.alma.load import load_files
from tasks.db.engine import dispose_engines, get_engine
from tasks.errors import InvalidInput

from test_alma_format import assert_comes_back, count_users, export_all
from test_alma_load_chunks import user, write_lines

POSTGRESQL = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
BOTH = pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)

UNCHECKED = "SET LOCAL session_replication_role = replica"


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(load, "CHUNK", 4)


def _statements(engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda conn, cursor, statement, *rest: seen.append(statement))
    return seen


def _links(engine) -> list[tuple]:
    """Every loan and fee transaction with the user it belongs to, by the database's own joins."""
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT u.primary_id, l.loan_id, NULL FROM loans l JOIN users u ON u.id = l.user_id"
            " UNION ALL SELECT u.primary_id, f.fee_id, t.amount_minor FROM fee_transactions t"
            " JOIN fees f ON f.id = t.fee_id JOIN users u ON u.id = f.user_id ORDER BY 1, 2")).all()


@POSTGRESQL
def test_a_load_skips_the_checks_that_cannot_fail_and_links_every_row_to_its_user(engine, tmp_path):
    records = [user(n) for n in range(1, 15)]   # 4 chunks
    statements = _statements(engine)

    counts = load_files(engine, [str(write_lines(tmp_path, records))])

    assert statements.count(UNCHECKED) == 4     # once per chunk, around its inserts alone
    assert counts["users"] == 14 and counts["loans"] == 14 and counts["fees"] == 4
    assert _links(engine) == sorted(
        [(f"c{n:03d}", f"L-c{n:03d}", None) for n in range(1, 15)]
        + [(f"c{n:03d}", f"F-c{n:03d}", 100) for n in range(3, 15, 3)])
    for before, after in zip(records, export_all(engine)):
        assert_comes_back(before, after, before["primary_id"])
    with engine.connect() as conn:   # the session's setting is its own again: the constraints hold
        assert conn.execute(text("SHOW session_replication_role")).scalar() == "origin"
        with pytest.raises(Exception, match="foreign key"):
            conn.execute(text("INSERT INTO loans (user_id, loan_id, loan_status) VALUES (-1, 'orphan', 'ACTIVE')"))


@POSTGRESQL
def test_a_trigger_of_the_library_keeps_every_check_and_runs_for_every_row(engine, tmp_path):
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE library_audit (loan_id text)"))
        conn.execute(text("CREATE FUNCTION library_audit_loan() RETURNS trigger LANGUAGE plpgsql AS "
                          "$$ BEGIN INSERT INTO library_audit VALUES (NEW.loan_id); RETURN NEW; END $$"))
        conn.execute(text("CREATE TRIGGER library_audit AFTER INSERT ON loans FOR EACH ROW "
                          "EXECUTE FUNCTION library_audit_loan()"))
    statements = _statements(engine)

    load_files(engine, [str(write_lines(tmp_path, [user(n) for n in range(1, 10)]))])

    assert UNCHECKED not in statements
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM library_audit")).scalar() == 9


def _add_a_foreign_key_of_the_library(conn) -> None:
    """loans.library must be one of the library's branches."""
    conn.execute(text("CREATE TABLE library_branches (code text PRIMARY KEY)"))
    conn.execute(text("INSERT INTO library_branches VALUES ('MAIN')"))
    if conn.dialect.name == "postgresql":
        conn.execute(text("ALTER TABLE loans ADD CONSTRAINT loans_branch FOREIGN KEY (library) "
                          "REFERENCES library_branches (code)"))
        return
    # SQLite adds a constraint by making the table again (its documented way): the new table, then
    # the old one's indexes; the library is empty, so there are no rows to copy.
    made = conn.execute(text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'loans'")).scalar()
    indexes = conn.execute(text("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'loans'"
                                " AND sql IS NOT NULL")).scalars().all()
    body = made[made.index("("):made.rindex(")")]
    conn.execute(text("DROP TABLE loans"))
    conn.execute(text(f"CREATE TABLE loans {body}, CONSTRAINT loans_branch FOREIGN KEY (library) "
                      "REFERENCES library_branches (code))"))
    for statement in indexes:
        conn.execute(text(statement))


@BOTH
def test_a_foreign_key_of_the_library_is_checked_and_refuses_the_file(engine, tmp_path):
    with engine.begin() as conn:
        _add_a_foreign_key_of_the_library(conn)
    records = [user(n) for n in range(1, 10)]
    for record in records:
        record["item_loan"][0]["library"] = {"value": "MAIN"}
    records[6]["item_loan"][0]["library"] = {"value": "ANNEX"}   # not one of the library's branches

    with pytest.raises(InvalidInput) as refused:
        load_files(engine, [str(write_lines(tmp_path, records))])

    named = "loans_branch" if engine.dialect.name == "postgresql" else "FOREIGN KEY constraint failed"
    assert "the database refused the file" in str(refused.value) and named in str(refused.value)
    assert count_users(engine) == 0


def _sqlite_checks_at_each_insert(monkeypatch) -> list[tuple[str, int]]:
    """(table, PRAGMA foreign_keys) of the load's connection as each table's rows go in."""
    seen: list[tuple[str, int]] = []
    insert = load._insert

    def recorded(conn, table, *rest):
        seen.append((table.name, conn.connection.dbapi_connection.execute("PRAGMA foreign_keys").fetchone()[0]))
        insert(conn, table, *rest)

    monkeypatch.setattr(load, "_insert", recorded)
    return seen


@SQLITE
def test_sqlite_loads_without_the_checks_that_cannot_fail_and_checks_again_afterwards(engine, tmp_path,
                                                                                      monkeypatch):
    records = [user(n) for n in range(1, 15)]   # 4 chunks
    checks = _sqlite_checks_at_each_insert(monkeypatch)

    counts = load_files(engine, [str(write_lines(tmp_path, records))])

    assert {"users", "loans", "fees", "fee_transactions"} <= {table for table, _ in checks}
    assert {on for _, on in checks} == {0}
    assert counts["users"] == 14 and counts["loans"] == 14 and counts["fees"] == 4
    assert _links(engine) == sorted(
        [(f"c{n:03d}", f"L-c{n:03d}", None) for n in range(1, 15)]
        + [(f"c{n:03d}", f"F-c{n:03d}", 100) for n in range(3, 15, 3)])
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    # A refused file too gives its connection back checking every foreign key.
    with pytest.raises(InvalidInput, match="appears twice"):
        load_files(engine, [str(write_lines(tmp_path, [user(20), user(21), user(20)]))])
    with engine.connect() as conn:   # the pool's one connection: the load's, checking again
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        with pytest.raises(Exception, match="FOREIGN KEY"):
            conn.execute(text("INSERT INTO loans (user_id, loan_id, loan_status) VALUES (-1, 'orphan', 'ACTIVE')"))


@SQLITE
def test_sqlite_keeps_every_check_for_a_foreign_key_of_the_library_and_for_an_attached_file(engine, tmp_path,
                                                                                            monkeypatch):
    load_files(engine, [str(write_lines(tmp_path, [user(1)]))])
    loans = tmp_path / "loans.json"
    loans.write_text(json.dumps({"item_loan": [{"loan_id": "L-more", "loan_status": "ACTIVE"}]}), encoding="utf-8")
    checks = _sqlite_checks_at_each_insert(monkeypatch)

    load_files(engine, [str(loans)], attach_to="c001")
    assert checks and {on for _, on in checks} == {1}

    with engine.begin() as conn:
        conn.execute(text("DELETE FROM users"))
        _add_a_foreign_key_of_the_library(conn)
    checks.clear()
    load_files(engine, [str(write_lines(tmp_path, [user(n) for n in range(2, 6)]))])
    assert checks and {on for _, on in checks} == {1}
    assert count_users(engine) == 4


@POSTGRESQL
def test_a_role_that_may_not_set_it_loads_with_every_check(db_url, engine, tmp_path, monkeypatch):
    # A file large enough to be checked in a second process, into an empty library: where the
    # library's owner would load without the non-unique indexes (`_defer_indexes`), this role, which
    # owns no table, keeps them.
    monkeypatch.setattr(load, "PROCESS_FROM_BYTES", 0)
    with engine.connect() as conn:
        indexes = conn.exec_driver_sql("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
                                       " ORDER BY 1").all()
    role = f"lumj_loader_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN"))
        conn.execute(text(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}"))
        conn.execute(text(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}"))
    url = make_url(db_url).set(username=role, password=None).render_as_string(hide_password=False)
    try:
        loader = get_engine(url)
        statements = _statements(loader)
        records = [user(n) for n in range(1, 10)]

        load_files(loader, [str(write_lines(tmp_path, records))])

        assert UNCHECKED not in statements and not any(s.startswith("DROP INDEX") for s in statements)
        assert [u["primary_id"] for u in export_all(engine)] == [r["primary_id"] for r in records]
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
                                        " ORDER BY 1").all() == indexes
    finally:
        dispose_engines()
        with get_engine(db_url).begin() as conn:
            conn.execute(text(f"DROP OWNED BY {role}"))
            conn.execute(text(f"DROP ROLE {role}"))


@POSTGRESQL
def test_a_file_attached_to_a_user_keeps_the_check_of_its_user(engine, tmp_path):
    load_files(engine, [str(write_lines(tmp_path, [user(1)]))])
    loans = tmp_path / "loans.json"
    loans.write_text(json.dumps({"item_loan": [{"loan_id": "L-more", "loan_status": "ACTIVE"}]}), encoding="utf-8")
    statements = _statements(engine)

    load_files(engine, [str(loans)], attach_to="c001")

    assert UNCHECKED not in statements
    assert ("c001", "L-more", None) in _links(engine)
