"""The library database: engine creation, URL handling and transactions.

Every other module gets its engine from here, so the SQLite pragmas, the password masking and the
"a write transaction locks before it reads" rule live in one place.
"""
from __future__ import annotations

import contextlib
import functools
import operator
import os
import re
import sqlite3
from pathlib import Path
from typing import Iterator

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from tasks.errors import InvalidInput

DEFAULT_DATABASE_URL = "sqlite:///data/library.db"


class ConfigurationError(InvalidInput):
    """Bad configuration: the CLI reports it with exit code 2."""


def database_url() -> str:
    """The configured library database: `DATABASE_URL`; else the Prefect Secret block named by
    `DATABASE_URL_SECRET_BLOCK` (the password then lives encrypted in Prefect, not in a worker's
    environment or a deployment's settings); else the embedded default. Never logged unmasked."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    block = os.environ.get("DATABASE_URL_SECRET_BLOCK", "").strip()
    if block:
        return _url_from_secret_block(block)
    return DEFAULT_DATABASE_URL


@functools.lru_cache(maxsize=8)
def _url_from_secret_block(name: str) -> str:
    # Read once per process: each flow run of a process worker is a fresh process, so a rotated
    # password is picked up by the next run.
    from prefect.blocks.system import Secret

    try:
        value = Secret.load(name).get()
    except ValueError as exc:
        raise ConfigurationError(
            f"DATABASE_URL_SECRET_BLOCK names the Secret block {name!r}, which could not be read "
            f"({type(exc).__name__}); create it with `prefect block create secret` or in the UI (Blocks)"
        ) from None
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"the Secret block {name!r} must hold the database URL as a plain string")
    return value.strip()


def mask_url(url: str) -> str:
    """The URL as it may appear in logs and reports: never with its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url)


def mask_secrets(text: str, url: str | None = None) -> str:
    """Remove the password of `url` (and any user:password@ pair) from an arbitrary message."""
    if url:
        try:
            password = make_url(url).password
        except ArgumentError:
            password = None
        if password:
            text = text.replace(str(password), "***")
    return re.sub(r"(//[^:/@\s]*):[^@\s]*@", r"\1:***@", text)


_engines: dict[str, Engine] = {}


def get_engine(url: str | None = None) -> Engine:
    """One engine per URL per process (engines own connection pools)."""
    url = url or database_url()
    engine = _engines.get(url)
    if engine is None:
        engine = _create_engine(url)
        _engines[url] = engine
    return engine


# The pools a forked process took over with its parent's memory (`in_forked_process`).
_INHERITED_POOLS: list = []


def in_forked_process(engine: Engine) -> Engine:
    """The engine, in a process forked from the one that made it, with connections of its own. The
    parent's connections came with the memory: they are kept, untouched, until the process ends, for
    closing one would end the parent's session on the server too."""
    _INHERITED_POOLS.append(engine.pool)
    engine.dispose(close=False)
    return engine


def dispose_engines() -> None:
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


def _create_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError(f"DATABASE_URL is not a valid SQLAlchemy URL: {mask_url(url)!r}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60})
        _configure_sqlite(engine)
        return engine
    if backend == "postgresql":
        engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
        _compress_full_page_images(engine)
        return engine
    raise ConfigurationError(
        f"DATABASE_URL uses {backend!r}; supported databases are sqlite and postgresql (postgresql+psycopg2)"
    )


def _compress_full_page_images(engine: Engine) -> None:
    """Each session compresses the whole pages it writes to the WAL (`wal_compression`), where the
    server leaves it off and our role may set it (a superuser, or `GRANT SET ON PARAMETER`).

    A batch job changes every table of a user record in every batch, all through the run, so after
    each checkpoint the first change of nearly every page writes the whole 8 kB page to the log again:
    a purge at 1,000,000 users wrote 5.1 GiB of WAL against its set-based baseline's 1.3 GiB, and that
    volume itself asked for more checkpoints, each re-arming the pages (BENCHMARKS.md, fourth round).
    Compressed, the purge writes 0.7 GiB with one checkpoint (seventh round). Set per session, so the
    server's configuration and other clients are untouched; a server that compresses already keeps
    its own choice."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        may_set = may_set_sql("wal_compression", dbapi_connection.server_version)
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SELECT current_setting('wal_compression') = 'off' AND {may_set}, 'lz4' = ANY(enumvals) "
                           "FROM pg_settings WHERE name = 'wal_compression'")
            found = cursor.fetchone()
            if found and found[0]:
                # lz4 where the server has it (PostgreSQL 15+): less CPU than pglz for the same pages.
                cursor.execute("SET wal_compression = " + ("lz4" if found[1] else "on"))
        dbapi_connection.commit()   # a SET lasts for the session only once its transaction commits


def may_set_sql(parameter: str, server_version: int) -> str:
    """SQL that is true when this session's role may set `parameter`, one a plain role may not: a
    superuser, or (PostgreSQL 15+) a role given `GRANT SET ON PARAMETER`."""
    if server_version >= 150000:
        return f"has_parameter_privilege('{parameter}', 'SET')"
    return "current_setting('is_superuser') = 'on'"


# {}.get(None) is None; operator.index(True) == 1, an int (`_bind_plainly`).
PLAIN_BINDINGS = {type(None): {}.get, bool: operator.index}


def _bind_plainly() -> None:
    """None and booleans bound without sqlite3's search for an adapter. Python's sqlite3 binds int,
    float, str and bytearray at once; any other value (None, bool, bytes) is first looked for in
    its adapters and then asked for `__adapt__` and `__conform__`, two exceptions raised and cleared
    per value: binding a row of 17 None cost 8.7 us against 3.3 us with an adapter found at once, and a
    load of 100,000 users binds millions of None (a third of its values) and booleans
    (BENCHMARKS.md). The adapters are C functions giving what sqlite3 would bind anyway (NULL; a
    boolean as its integer), so nothing stored changes; they are the process's, as sqlite3's
    adapters are, and no other value's binding changes."""
    for kind, adapter in PLAIN_BINDINGS.items():
        sqlite3.register_adapter(kind, adapter)


def _configure_sqlite(engine: Engine) -> None:
    _bind_plainly()
    # pysqlite's own transaction handling starts transactions lazily and cannot take the write lock
    # up front; we take over BEGIN so a batch can read its guards and write under one lock.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA busy_timeout = 60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        if conn.get_execution_options().get("write_lock"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def is_sqlite(conn_or_engine: Connection | Engine) -> bool:
    return conn_or_engine.dialect.name == "sqlite"


@contextlib.contextmanager
def write_transaction(engine: Engine | None = None, sqlite_foreign_keys: bool = True) -> Iterator[Connection]:
    """One all-or-nothing transaction that holds the write lock from its first statement (SQLite)
    so the guards it re-reads cannot change before it writes. With `sqlite_foreign_keys` false, SQLite
    checks no foreign key in it: for a writer whose rows cannot break one (the load's,
    tasks/alma/load._links_by_construction). SQLite takes that setting only between transactions, so it
    is made before BEGIN and undone before the connection goes back to the pool (PostgreSQL's
    counterpart is per statement, the caller's)."""
    engine = engine or get_engine()
    with engine.connect().execution_options(write_lock=True) as conn:
        if sqlite_foreign_keys or not is_sqlite(conn):
            with conn.begin():
                yield conn
            return
        raw = conn.connection.dbapi_connection   # not through SQLAlchemy: that would begin a transaction
        raw.execute("PRAGMA foreign_keys = OFF")
        try:
            with conn.begin():
                yield conn
        finally:
            try:
                raw.execute("PRAGMA foreign_keys = ON")
            except sqlite3.Error:
                conn.invalidate()   # never back to the pool without its checks


def plan_by_ids(conn: Connection) -> None:
    """For the rest of this transaction, PostgreSQL reaches rows through the tables' indexes: for a
    writer whose statements each take a list of thousands of ids (a job's batch, `policy set`'s chunks
    of earlier-purged users), a fraction of every table. With 5,000 ids as one array the planner took
    a whole table's sequential scan for cheaper than 5,000 index probes: at 1,000,000 users a purge
    batch's delete of its users' phones read all 950,000 of them, 72-112 ms against 5 ms through the
    index (BENCHMARKS.md, "Library scale, eighth round"). A table with no usable index is still read
    whole; the setting ends with the transaction."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")


@contextlib.contextmanager
def read_snapshot(engine: Engine, imported: str | None = None) -> Iterator[Connection]:
    """A read transaction that sees the database as it was at one moment, taken at once: SQLite's read
    transaction is one (begun here with a first read); on PostgreSQL REPEATABLE READ makes it one
    (READ COMMITTED takes a new snapshot per statement), or `imported` makes it the snapshot another
    transaction exported (`pg_export_snapshot()`), which is then read exactly as that one reads."""
    with engine.connect() as conn:
        postgresql = conn.dialect.name == "postgresql"
        if postgresql:
            conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            if imported is not None:
                conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{imported}'")
            else:
                conn.exec_driver_sql("SELECT 1" if postgresql else "SELECT count(*) FROM sqlite_master").scalar()
            yield conn


@contextlib.contextmanager
def read_connection(engine: Engine | None = None) -> Iterator[Connection]:
    engine = engine or get_engine()
    with engine.connect() as conn:
        with conn.begin():
            yield conn
