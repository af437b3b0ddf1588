"""Throw-away library databases for tests and benchmarks: create one (PostgreSQL, optionally from a
template), copy one (SQLite: the online backup API; PostgreSQL: CREATE DATABASE ... TEMPLATE, which needs
the source idle), drop one. SQLite databases are files and need no creating."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url

from tasks.db.engine import dispose_engines

_PG_NAMES = postgresql.dialect().identifier_preparer


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_path(url: str) -> str:
    return make_url(url).database


def pg_admin_url(url: str) -> str:
    """The server's `postgres` database, from which databases are created and dropped."""
    return make_url(url).set(database="postgres").render_as_string(hide_password=False)


def with_database(url: str, name: str) -> str:
    """`url` pointed at database `name` on the same server."""
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _run_admin(admin_url: str, statement: str) -> None:
    # CREATE and DROP DATABASE run outside a transaction; a database name cannot be a bound parameter.
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(statement))
    finally:
        admin.dispose()


def _quoted(name: str) -> str:
    return _PG_NAMES.quote_identifier(name)


def create_pg_database(admin_url: str, name: str, template: str | None = None) -> str:
    """A new database `name` on the server of `admin_url` (a copy of `template` if given); its URL."""
    statement = f"CREATE DATABASE {_quoted(name)}"
    if template:
        statement += f" TEMPLATE {_quoted(template)}"
    _run_admin(admin_url, statement)
    return with_database(admin_url, name)


def drop_database(url: str) -> None:
    """Remove the database at `url` (SQLite: its file and journal files); nothing happens if it is gone."""
    if is_sqlite(url):
        for suffix in ("", "-wal", "-shm"):
            Path(sqlite_path(url) + suffix).unlink(missing_ok=True)
        return
    _run_admin(pg_admin_url(url), f"DROP DATABASE IF EXISTS {_quoted(make_url(url).database)} WITH (FORCE)")


def clone_database(url: str, label: str) -> str:
    """An identical copy of the library at `url`, named after it and `label` (an older copy of that name
    is replaced); its URL."""
    dispose_engines()
    if is_sqlite(url):
        source = sqlite_path(url)
        target = str(Path(source).with_name(f"{Path(source).stem}_{label}.db"))
        Path(target).unlink(missing_ok=True)
        with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
            src.backup(dst)
        return f"sqlite:///{target}"
    name = f"{make_url(url).database}_{label}"[:63]
    drop_database(with_database(url, name))
    return create_pg_database(pg_admin_url(url), name, template=make_url(url).database)
