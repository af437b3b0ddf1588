"""On PostgreSQL a load writes its rows without the foreign-key check of each row where those checks
cannot fail (every row links to a parent the same chunk has just inserted) and nothing else would be
skipped with them: the library's own triggers, rules and foreign keys keep every check, and so does a
role that may not set `session_replication_role` (tasks/alma/load.py, `_links_by_construction`)."""
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

pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)

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


def test_a_foreign_key_of_the_library_is_checked_and_refuses_the_file(engine, tmp_path):
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE library_branches (code text PRIMARY KEY)"))
        conn.execute(text("INSERT INTO library_branches VALUES ('MAIN')"))
        conn.execute(text("ALTER TABLE loans ADD CONSTRAINT loans_branch FOREIGN KEY (library) "
                          "REFERENCES library_branches (code)"))
    records = [user(n) for n in range(1, 10)]
    for record in records:
        record["item_loan"][0]["library"] = {"value": "MAIN"}
    records[6]["item_loan"][0]["library"] = {"value": "ANNEX"}   # not one of the library's branches

    with pytest.raises(InvalidInput) as refused:
        load_files(engine, [str(write_lines(tmp_path, records))])

    assert "the database refused the file" in str(refused.value) and "loans_branch" in str(refused.value)
    assert count_users(engine) == 0


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


def test_a_file_attached_to_a_user_keeps_the_check_of_its_user(engine, tmp_path):
    load_files(engine, [str(write_lines(tmp_path, [user(1)]))])
    loans = tmp_path / "loans.json"
    loans.write_text(json.dumps({"item_loan": [{"loan_id": "L-more", "loan_status": "ACTIVE"}]}), encoding="utf-8")
    statements = _statements(engine)

    load_files(engine, [str(loans)], attach_to="c001")

    assert UNCHECKED not in statements
    assert ("c001", "L-more", None) in _links(engine)
