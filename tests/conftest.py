"""Test fixtures: a fresh library database per test on SQLite and on PostgreSQL, and a real
temporary Prefect API for the session.

PostgreSQL databases are cloned from a template that already holds the schema, so each test gets
its own database in ~100 ms and test sessions running side by side never see each other's rows.
"""
from __future__ import annotations

import os
import tempfile
import uuid

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


# In CI the property tests run a fixed set of examples (Hypothesis derives them from each test), so a
# submission's result does not depend on a random draw; anywhere else they explore new examples every
# run, which is how they find bugs (an example one found is kept as an @example of its test).
hypothesis_settings.register_profile("ci", derandomize=True)
if os.environ.get("CI") == "true":
    hypothesis_settings.load_profile("ci")

# Prefect reads its settings at import time: point it at a private home before anything imports it.
_PREFECT_HOME = tempfile.mkdtemp(prefix="lumj-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.pop("DATABASE_URL", None)

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _pg_admin():
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


@pytest.fixture(scope="session")
def pg_template():
    """A template database with the current schema, or None when PostgreSQL is unreachable."""
    try:
        admin = _pg_admin()
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any connection failure means "no server"
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI but unreachable: {exc}")
        yield None
        return
    from tasks.devtools.databases import create_pg_database, drop_database
    from tasks.db.engine import dispose_engines, get_engine
    from tasks.library.init_db import init_db

    admin.dispose()
    url = create_pg_database(PG_ADMIN_URL, f"lumj_tpl_{uuid.uuid4().hex[:10]}")
    init_db(get_engine(url))
    dispose_engines()
    yield make_url(url).database
    drop_database(url)


def _new_database(kind: str, pg_template, tmp_path) -> tuple[str, callable]:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/library.db", lambda: None
    if pg_template is None:
        pytest.skip("PostgreSQL is not reachable (required when CI=true)")
    from tasks.devtools.databases import create_pg_database, drop_database

    url = create_pg_database(PG_ADMIN_URL, f"lumj_t_{uuid.uuid4().hex[:12]}", template=pg_template)
    return url, lambda: drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, pg_template, tmp_path, monkeypatch):
    """URL of a fresh, initialised library database; also exported as DATABASE_URL."""
    from tasks.db.engine import dispose_engines, get_engine
    from tasks.library.init_db import init_db

    url, drop = _new_database(request.param, pg_template, tmp_path)
    monkeypatch.setenv("DATABASE_URL", url)
    init_db(get_engine(url))
    yield url
    dispose_engines()
    drop()


@pytest.fixture
def engine(db_url):
    from tasks.db.engine import get_engine

    return get_engine(db_url)


@pytest.fixture(scope="session")
def prefect_api():
    """A real temporary Prefect API for flow runs, shared by the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def cli(prefect_api, capsys):
    """Run `python -m flows ARGS` in-process; returns (exit_code, stdout, stderr)."""
    from flows.__main__ import main

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run
