"""Schema migrations (tasks/db/migrate.py), on SQLite and PostgreSQL, as an administrator meets them:
a new database, a database made before migrations, a database made by newer code, init-db twice,
two commands starting at once, and a later revision that rebuilds a table on SQLite."""
from __future__ import annotations

import datetime as dt
import os
import shutil
import threading
import uuid

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, delete, event, func, insert, inspect, select, text
from sqlalchemy.engine import make_url

from tasks.db import migrate
from tasks.db.engine import dispose_engines, get_engine
from tasks.db.migrate import (
    ADOPTED_REVISION,
    SchemaNewerThanCode,
    alembic_config,
    head_revision,
    migration_transaction,
    schema_info,
)
from tasks.db.schema import (codes, fee_transactions, fees, job_events, job_runs, loans, metadata, requests, settings,
                             user_identifiers, user_statistics, users)
from tasks.errors import InvalidInput
from tasks.library.init_db import init_db, schema_revision

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


def _admin(sql: str) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(sql))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def blank_url(request, pg_template, tmp_path):
    """A factory of empty databases (nothing created in them), dropped after the test."""
    made = []

    def make() -> str:
        if request.param == "sqlite":
            return f"sqlite:///{tmp_path}/{uuid.uuid4().hex[:8]}.db"
        if pg_template is None:
            pytest.skip("PostgreSQL is not reachable (required when CI=true)")
        name = f"lumj_m_{uuid.uuid4().hex[:12]}"
        _admin(f'CREATE DATABASE "{name}"')
        made.append(name)
        return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    yield make
    dispose_engines()
    for name in made:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def reflected_schema(engine) -> dict:
    """Everything the database says about its tables, in a comparable form."""
    insp = inspect(engine)
    out = {}
    for table in sorted(set(insp.get_table_names()) - {"alembic_version"}):
        out[table] = {
            "columns": [{k: str(v) for k, v in c.items() if k != "comment"} for c in insp.get_columns(table)],
            "pk": insp.get_pk_constraint(table),
            "fks": sorted(str(sorted(fk.items())) for fk in insp.get_foreign_keys(table)),
            # a partial index's WHERE comes back as a clause object: compared by its SQL
            "indexes": sorted(str(sorted({**ix, "dialect_options": {k: str(v) for k, v in
                                                                    ix.get("dialect_options", {}).items()}}.items()))
                              for ix in insp.get_indexes(table)),
            "uniques": sorted(str(sorted(u.items())) for u in insp.get_unique_constraints(table)),
            "checks": sorted(str(sorted(c.items())) for c in insp.get_check_constraints(table)),
        }
    return out


def schema_differences(engine) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts=migrate.COMPARE_OPTIONS)
        return compare_metadata(context, metadata)


def test_revisions_make_what_create_all_makes(blank_url):
    """The revisions and tasks/db/schema.py agree, to the constraint names (checks included, which
    alembic's comparison leaves out). With revision 0001 alone this says 0001 is what the code before
    migrations made with create_all."""
    by_revisions, by_create_all = get_engine(blank_url()), get_engine(blank_url())
    assert init_db(by_revisions) == head_revision()
    metadata.create_all(by_create_all)
    made = reflected_schema(by_revisions)
    assert made == reflected_schema(by_create_all)
    assert len(made) == len(metadata.tables)
    for name, table in made.items():
        if "segment_type" in metadata.tables[name].c:
            assert any("segment_type" in check for check in table["checks"]), name
    assert schema_differences(by_revisions) == []


def test_new_database_is_brought_to_head_and_seeded(blank_url):
    engine = get_engine(blank_url())
    assert schema_revision(engine) is None
    assert init_db(engine) == head_revision()
    assert schema_revision(engine) == head_revision()
    with engine.connect() as conn:
        assert conn.execute(select(settings.c.value).where(settings.c.key == "delete_user_policy")).scalar() \
            == "keep-statistics-remove-id"
        assert conn.execute(select(func.count()).select_from(codes)).scalar() > 50
        assert not inspect(conn).has_table("schema_info")


def _make_pre_migration_library(url: str) -> None:
    """A library as the code before migrations left it: the schema of revision 0001 (which the test
    above shows is what that code's create_all made), its `schema_info` version 1, the index its
    init-db dropped at every run, seeds, and a user with a history: a returned loan, a request in
    history, a statistical category, a fee with a transaction, a job run and its event. No alembic_version."""
    engine = get_engine(url)
    now = dt.datetime(2026, 3, 1, 12, 0)
    with migration_transaction(engine) as conn:
        command.upgrade(alembic_config(conn), ADOPTED_REVISION)
        conn.execute(text("DROP TABLE alembic_version"))
        schema_info.create(conn)
        conn.execute(insert(schema_info).values(key="schema_version", value="1"))
        conn.execute(text("CREATE INDEX ix_users_purged_at ON users (purged_at)"))
        conn.execute(insert(settings).values(key="delete_user_policy", value="fully-remove"))
        conn.execute(insert(codes).values(code_table="user-group", code="LOCAL", description="Local to us"))
        user_id = conn.execute(insert(users).values(primary_id="u-1", last_name="Old", user_group="LOCAL")
                               .returning(users.c.id)).scalar()
        fee_id = conn.execute(insert(fees).values(user_id=user_id, fee_id="f-1", fee_type="OVERDUEFINE",
                                                  status="ACTIVE", balance_minor=250, original_amount_minor=500)
                              .returning(fees.c.id)).scalar()
        conn.execute(insert(fee_transactions).values(fee_id=fee_id, type="PAYMENT", amount_minor=250,
                                                     transaction_time=now))
        conn.execute(insert(user_identifiers).values(user_id=user_id, id_type="BARCODE", value="B-1"))
        conn.execute(insert(loans).values(user_id=user_id, loan_id="l-1", loan_status="COMPLETE", library="MAIN",
                                          loan_date=now, due_date=now, return_date=now))
        conn.execute(insert(requests).values(user_id=user_id, request_id="r-1", request_status="HISTORY",
                                             request_date=now.date()))
        conn.execute(insert(user_statistics).values(user_id=user_id, category_type="AGE", statistic_category="ADULT"))
        conn.execute(insert(job_runs).values(run_id="run-1", job="purge-user-records", status="COMPLETED",
                                             dry_run=True, parameters="{}", started_at=now))
        conn.execute(insert(job_events).values(run_id="run-1", event="USER_SKIPPED", user_id=user_id,
                                               created_at=now))


# Columns revision 0002 adds: a database before it has none of them.
ANONYMISED_COLUMNS = {"anonymized_at", "anon_user_group", "anon_record_type", "anon_account_type", "anon_statistics"}


def _rows(engine, tables=(users, fees, fee_transactions, loans, requests, user_statistics, user_identifiers,
                          job_runs, job_events, settings, codes)) -> dict:
    """Every row of `tables`, in the columns both the database and the code's tables have (an older
    revision lacks some): {table: sorted [{column: value as text}]}."""
    insp = inspect(engine)
    with engine.connect() as conn:
        out = {}
        for table in tables:
            present = [table.c[c["name"]] for c in insp.get_columns(table.name) if c["name"] in table.c]
            out[table.name] = sorted((dict(zip((c.name for c in present), map(str, row)))
                                      for row in conn.execute(select(*present))), key=lambda r: sorted(r.items()))
        return out


def _kept(before: dict, after: dict) -> None:
    """Every row and value of `before` is in `after` unchanged; columns added since are empty."""
    for table, rows in before.items():
        assert len(after[table]) == len(rows), table
        for old, new in zip(rows, after[table]):
            assert {k: new[k] for k in old} == old, table
            assert all(new[k] == "None" for k in set(new) - set(old)), table


def test_pre_migration_database_is_adopted_in_place(blank_url):
    url = blank_url()
    _make_pre_migration_library(url)
    engine = get_engine(url)
    before = _rows(engine)
    assert schema_revision(engine) is None

    assert init_db(engine) == head_revision()

    assert schema_revision(engine) == head_revision()
    after = _rows(engine)
    codes_before, codes_after = before.pop("codes"), after.pop("codes")
    _kept(before, after)  # the policy stays fully-remove, not the default
    assert all(code in codes_after for code in codes_before)  # LOCAL kept; seeds added
    insp = inspect(engine)
    assert not insp.has_table("schema_info")
    assert "ix_users_purged_at" not in {ix["name"] for ix in insp.get_indexes("users")}
    fresh = get_engine(blank_url())
    init_db(fresh)
    assert reflected_schema(engine) == reflected_schema(fresh)  # adopted = made new
    assert schema_differences(engine) == []


@pytest.mark.parametrize("start", ["pre-migration", "0001"])
def test_upgrade_to_anonymised_history_keeps_every_row(blank_url, start):
    """Revision 0002 makes loans, requests and fees.user_id nullable: on SQLite batch mode rebuilds the
    three tables (and drops the old copies, which with foreign keys on would cascade into fee
    transactions). Every row stays, linked as it was; the new columns are empty; the foreign keys
    stay, and SQLite enforces them again afterwards."""
    url = blank_url()
    _make_pre_migration_library(url)
    engine = get_engine(url)
    if start == "0001":
        with migration_transaction(engine) as conn:
            conn.execute(text("DROP INDEX ix_users_purged_at"))
            schema_info.drop(conn)
            command.stamp(alembic_config(conn), "0001")
        assert schema_revision(engine) == "0001"
    before = _rows(engine)

    assert init_db(engine) == head_revision()

    after = _rows(engine)
    _kept({table: before[table] for table in ("users", "fees", "fee_transactions", "loans", "requests",
                                              "user_statistics", "job_runs", "job_events")}, after)
    insp = inspect(engine)
    for table in (loans, requests, fees):
        columns = {c["name"]: c for c in insp.get_columns(table.name)}
        assert columns["user_id"]["nullable"], table.name
        assert ANONYMISED_COLUMNS <= set(columns), table.name
        assert [fk["referred_table"] for fk in insp.get_foreign_keys(table.name)] == ["users"], table.name
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(table)
                                .where(table.c.anonymized_at.is_not(None))).scalar() == 0
    assert "ix_job_events_fee_id" in {ix["name"] for ix in insp.get_indexes("job_events")}
    assert schema_differences(engine) == []
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def _stamp_from_the_future(engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_from_newer_code'"))
        # a seed init-db would put back, were it to write anything
        conn.execute(delete(codes).where(codes.c.code_table == "waive-reason", codes.c.code == "GOODWILL"))


def test_database_newer_than_code_is_refused_unchanged(blank_url):
    engine = get_engine(blank_url())
    init_db(engine)
    _stamp_from_the_future(engine)
    before = (reflected_schema(engine), _rows(engine))

    with pytest.raises(SchemaNewerThanCode) as refused:
        init_db(engine)

    assert isinstance(refused.value, InvalidInput)  # the CLI's exit code 2
    message = str(refused.value)
    assert "'0099_from_newer_code'" in message and f"{head_revision()!r}" in message
    assert "upgrade the code" in message
    assert (reflected_schema(engine), _rows(engine)) == before
    assert schema_revision(engine) == "0099_from_newer_code"


def test_pre_migration_database_of_unknown_version_is_refused(blank_url):
    url = blank_url()
    _make_pre_migration_library(url)
    engine = get_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE schema_info SET value = '2' WHERE key = 'schema_version'"))
    before = (reflected_schema(engine), _rows(engine))
    with pytest.raises(SchemaNewerThanCode, match="schema version '2'"):
        init_db(engine)
    assert (reflected_schema(engine), _rows(engine)) == before


def test_cli_refuses_a_newer_database_with_exit_code_2(blank_url, monkeypatch, capsys):
    from flows.__main__ import main

    url = blank_url()
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(["init-db"]) == 0
    assert f"schema revision {head_revision()} ready" in capsys.readouterr().out
    _stamp_from_the_future(get_engine(url))

    assert main(["init-db"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "0099_from_newer_code" in err and "upgrade the code" in err


def test_init_db_at_head_writes_nothing(blank_url):
    engine = get_engine(blank_url())
    init_db(engine)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda _conn, _cursor, statement, *_: statements.append(statement.strip().upper()))
    assert init_db(engine) == head_revision()
    assert statements  # it did look
    assert [s for s in statements if not s.startswith(("SELECT", "PRAGMA", "SHOW", "WITH"))
            and s != "BEGIN"] == []


def test_commands_starting_at_once_on_a_new_database(blank_url):
    url = blank_url()
    results, errors = [], []

    def run():
        try:
            results.append(init_db(get_engine(url)))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and results == [head_revision()] * 3


LATER_REVISION = '''
from alembic import op
import sqlalchemy as sa

revision = "9001"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade():
    # On SQLite changing a column's type rebuilds users (copy, drop, rename): the table every other
    # one points at. On PostgreSQL these are plain ALTER TABLE statements.
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("pronouns", sa.String(32)))
        batch_op.alter_column("last_name", type_=sa.String(300), existing_type=sa.String(255))
'''


def test_a_later_revision_rebuilding_users_loses_nothing(blank_url, tmp_path, monkeypatch):
    """What the next issues will do: a revision that alters a table. On SQLite batch mode drops the old
    users table; with foreign keys on that would cascade into fees, loans, identifiers, …"""
    url = blank_url()
    _make_pre_migration_library(url)
    engine = get_engine(url)
    init_db(engine)
    before = _rows(engine)

    scripts = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "9001_pronouns.py").write_text(LATER_REVISION.replace("{head}", head_revision()))
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", scripts)
    migrate.known_revisions.cache_clear()
    try:
        assert init_db(engine) == "9001"
        assert _rows(engine) == before
        assert "pronouns" in {c["name"] for c in inspect(engine).get_columns("users")}
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # back on afterwards
    finally:
        migrate.known_revisions.cache_clear()


def test_a_library_before_issue_14_is_upgraded_in_place(blank_url):
    """Issue 14 point 5: a library made by the code before the Alma work (revision 0001: users, a fee
    with its ledger, loans, requests, statistics, job history) is upgraded by init-db in place, through
    0002 and 0005. Nothing is lost; the
    user made before keeps its EXTERNAL account type; afterwards a user may leave it unsaid, a CREDIT fee
    carries negative amounts, and any other fee still may not."""
    url = blank_url()
    _make_pre_migration_library(url)
    engine = get_engine(url)
    before = _rows(engine)

    assert init_db(engine) == head_revision()

    after = _rows(engine)
    assert all(code in after.pop("codes") for code in before.pop("codes"))  # seeds added
    _kept(before, after)
    assert [row["account_type"] for row in after["users"]] == ["EXTERNAL"]
    insp = inspect(engine)
    for table in metadata.tables.values():
        assert ("extra" in {c["name"] for c in insp.get_columns(table.name)}) == ("extra" in table.c), table.name
    assert {c["name"] for c in insp.get_check_constraints("fees")} >= {"fees_balance_sign"}
    assert "fees_balance_not_negative" not in {c["name"] for c in insp.get_check_constraints("fees")}
    with engine.begin() as conn:
        user_id = conn.execute(insert(users).values(primary_id="u-2", extra='{"gender": "NONE"}')
                               .returning(users.c.id)).scalar()
        conn.execute(insert(fees).values(user_id=user_id, fee_id="c-1", fee_type="CREDIT", status="ACTIVE",
                                         balance_minor=-300, original_amount_minor=-300))
        assert conn.execute(select(users.c.account_type, users.c.extra).where(users.c.id == user_id)).one() \
            == (None, '{"gender": "NONE"}')
    with pytest.raises(Exception, match="(?i)check"), engine.begin() as conn:
        conn.execute(insert(fees).values(user_id=user_id, fee_id="f-neg", fee_type="OVERDUEFINE",
                                         status="ACTIVE", balance_minor=-1, original_amount_minor=0))
    assert schema_differences(engine) == []


def test_the_revisions_read_without_alembic_are_alembics():
    """The at-head check reads revisions from the files' names (so a command need not import Alembic):
    they must be what Alembic reads from the files, one line ending at the same head."""
    script = migrate.alembic_script()
    assert migrate.known_revisions() == {s.revision for s in script.walk_revisions()}
    assert script.get_heads() == [head_revision()]


def test_a_command_on_a_database_at_head_does_not_import_alembic(tmp_path):
    """Every command checks the schema first; at head that check is a few reads, not Alembic's import."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path}/library.db"
    init_db(get_engine(url))
    probe = ("import sys; from tasks.db.engine import get_engine; from tasks.library.init_db import init_db; "
             f"print(init_db(get_engine({url!r}))); print('alembic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out == [head_revision(), "False"]
