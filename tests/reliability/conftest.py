"""Fixtures for the reliability suite: a demo library built once per database kind and copied per
test (SQLite: the backup API; PostgreSQL: CREATE DATABASE ... TEMPLATE), and a way to run the CLI as a
real child process that a test may kill."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tasks.devtools import databases

ROOT = Path(__file__).resolve().parents[2]
TODAY = dt.date(2026, 12, 20)
DEMO_USERS = 2000
DEMO_SEED = 20261220
# The same server the top-level conftest uses (its helpers are not imported: importing a conftest
# a second time would re-run its set-up).
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


class Library:
    """A built library that can be copied into fresh databases, each dropped at the end. Copies use
    tasks/devtools/databases.py (SQLite backup API; PostgreSQL CREATE DATABASE ... TEMPLATE)."""

    def __init__(self, kind: str, url: str):
        self.kind = kind
        self.url = url
        self._made: list[str] = []

    def copy(self) -> str:
        url = databases.clone_database(self.url, f"copy_{uuid.uuid4().hex[:8]}")
        self._made.append(url)
        return url

    def drop_copies(self) -> None:
        from tasks.db.engine import dispose_engines

        dispose_engines()
        for url in [*self._made, self.url]:
            databases.drop_database(url)


def build_library(kind: str, pg_template, workdir: Path, build) -> Library:
    """`build(engine)` fills a fresh initialised database, which then serves as the template."""
    from tasks.db.engine import dispose_engines, get_engine
    from tasks.library.init_db import init_db

    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'template.db'}"
    else:
        if pg_template is None:
            pytest.skip("PostgreSQL is not reachable (required when CI=true)")
        url = databases.create_pg_database(PG_ADMIN_URL, f"lumj_rt_{uuid.uuid4().hex[:10]}", template=pg_template)
    engine = get_engine(url)
    init_db(engine)
    build(engine)
    if kind == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    dispose_engines()
    return Library(kind, url)


def demo_build(engine) -> None:
    from tasks.devtools.demo import make_demo_library

    make_demo_library(engine, users=DEMO_USERS, seed=DEMO_SEED, today=TODAY)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def demo_library(request, pg_template, tmp_path_factory):
    """The demo library of a few thousand users, on each database kind."""
    library = build_library(request.param, pg_template, tmp_path_factory.mktemp(f"demo-{request.param}"),
                            demo_build)
    yield library
    library.drop_copies()


@pytest.fixture
def child_env(prefect_api):
    """Environment for `python -m flows` as a child process, talking to the session's Prefect API."""
    from prefect.settings import PREFECT_API_URL

    def env(database_url: str) -> dict[str, str]:
        out = dict(os.environ)
        out.update(DATABASE_URL=database_url, PREFECT_API_URL=str(PREFECT_API_URL.value()),
                   PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_LOGGING_LEVEL="WARNING")
        return out

    return env


def start_cli(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "flows", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
