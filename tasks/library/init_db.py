"""`init-db`: bring the schema to the code's head revision, idempotently, and seed what a library needs.

It runs at the start of every command, so a database already at head with its seeds costs a few
catalogue reads and nothing is written or locked; only a database that needs work takes the write
lock (tasks/db/migrate.py: migration_transaction) and is looked at again under it.
"""
from __future__ import annotations

from sqlalchemy import Connection, Engine, select

from tasks.db.engine import get_engine, read_connection
from tasks.db.statements import insert_or_ignore
from tasks.db.migrate import check_can_upgrade, migration_transaction, schema_state, upgrade_to_head
from tasks.db.schema import codes, settings
from tasks.library.codes import CODE_TABLES, seed_codes

DEFAULT_SETTINGS = {"delete_user_policy": "keep-statistics-remove-id"}

_SEED_CODES = frozenset((table, code) for table, (_, defaults) in CODE_TABLES.items() for code in defaults)


def init_db(engine: Engine | None = None) -> str:
    """Create or upgrade the schema to head (adopting a pre-migrations database, refusing one newer than
    the code with SchemaNewerThanCode, exit code 2) and seed codes and settings. Returns the revision
    now in force."""
    engine = engine or get_engine()
    with read_connection(engine) as conn:
        state = schema_state(conn)
        check_can_upgrade(state)  # a database this code cannot handle is refused before any write
        if state.at_head and _seeded(conn):
            return state.revision
    with migration_transaction(engine) as conn:
        revision = upgrade_to_head(conn)
        conn.execute(
            insert_or_ignore(conn, settings),
            [{"key": k, "value": v} for k, v in DEFAULT_SETTINGS.items()],
        )
        seed_codes(conn)
    return revision


def _seeded(conn: Connection) -> bool:
    have_settings = set(conn.execute(select(settings.c.key)).scalars())
    if not set(DEFAULT_SETTINGS) <= have_settings:
        return False
    tables = sorted({table for table, _ in _SEED_CODES})
    have = conn.execute(select(codes.c.code_table, codes.c.code).where(codes.c.code_table.in_(tables)))
    return _SEED_CODES <= {tuple(row) for row in have}


def schema_revision(engine: Engine | None = None) -> str | None:
    """The revision the database is at (None for an empty or pre-migrations database)."""
    engine = engine or get_engine()
    with read_connection(engine) as conn:
        return schema_state(conn).revision
