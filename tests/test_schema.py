import contextlib
import sqlite3

from sqlalchemy import inspect

from tasks.library.codes import code_values
from tasks.db.engine import PLAIN_BINDINGS, get_engine, mask_secrets, mask_url
from tasks.db.migrate import head_revision
from tasks.library.init_db import init_db, schema_revision


def test_init_db_is_idempotent_and_records_revision(engine):
    assert schema_revision(engine) == head_revision()
    assert init_db(engine) == head_revision()  # second run changes nothing and does not fail
    tables = set(inspect(engine).get_table_names())
    assert {"users", "fees", "fee_transactions", "loans", "requests", "job_runs", "job_events", "codes"} <= tables
    with engine.connect() as conn:
        assert "USER_PURGED" in code_values(conn, "waive-reason")


def test_sqlite_enforces_foreign_keys(tmp_path):
    engine = get_engine(f"sqlite:///{tmp_path}/fk.db")
    init_db(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_sqlite_stores_none_and_booleans_as_sqlite_itself_would(tmp_path):
    # The jobs' SQLite engine binds None and booleans through adapters of their own (engine.py,
    # _bind_plainly): what is stored must be exactly what sqlite3 stores without them.
    engine = get_engine(f"sqlite:///{tmp_path}/bind.db")
    rows = [(None, True, False, 7, "x", b"\x00\x01"), (0, 1, None, None, None, None)]
    with engine.connect() as conn:
        ours = conn.connection.driver_connection
        ours.execute("CREATE TABLE t (a, b, c, d, e, f)")
        ours.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", rows)
        found = ours.execute("SELECT typeof(a), a, typeof(b), b, typeof(c), c, d, e, f FROM t ORDER BY rowid").fetchall()
    assert found == [("null", None, "integer", 1, "integer", 0, 7, "x", b"\x00\x01"),
                     ("integer", 0, "integer", 1, "null", None, None, None, None)]
    plain = sqlite3.connect(":memory:")   # sqlite3's own binding, for the same rows
    plain.execute("CREATE TABLE t (a, b, c, d, e, f)")
    with _without_adapters_of(*PLAIN_BINDINGS):
        plain.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", rows)
    assert plain.execute("SELECT typeof(a), a, typeof(b), b, typeof(c), c, d, e, f FROM t ORDER BY rowid").fetchall() \
        == found


@contextlib.contextmanager
def _without_adapters_of(*types):
    keys = [(kind, sqlite3.PrepareProtocol) for kind in types]
    saved = {key: sqlite3.adapters.pop(key) for key in keys if key in sqlite3.adapters}
    try:
        yield
    finally:
        sqlite3.adapters.update(saved)


def test_password_never_shown():
    url = "postgresql+psycopg2://lib:s3cret@db.example:5432/library"
    assert "s3cret" not in mask_url(url)
    assert "s3cret" not in mask_secrets(f"could not connect to {url}: password s3cret rejected", url)
