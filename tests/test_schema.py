from sqlalchemy import inspect

from tasks.library.codes import code_values
from tasks.db.engine import get_engine, mask_secrets, mask_url
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


def test_password_never_shown():
    url = "postgresql+psycopg2://lib:s3cret@db.example:5432/library"
    assert "s3cret" not in mask_url(url)
    assert "s3cret" not in mask_secrets(f"could not connect to {url}: password s3cret rejected", url)
