"""`init-db`: create or upgrade the schema, idempotently, and seed what a new library needs."""
from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from tasks.library.codes import seed_codes
from tasks.db.engine import get_engine, write_transaction
from tasks.db.schema import SCHEMA_VERSION, metadata, schema_info, settings
from tasks.db.sql import sql_for

DEFAULT_SETTINGS = {"delete_user_policy": "keep-statistics-remove-id"}


def init_db(engine: Engine | None = None) -> int:
    """Create missing tables and indexes, record the schema version, seed codes and settings.
    Returns the schema version now in force."""
    engine = engine or get_engine()
    with write_transaction(engine) as conn:
        metadata.create_all(conn, checkfirst=True)
        conn.execute(sql_for(conn, "schema/drop_retired_indexes"))
        current = conn.execute(select(schema_info.c.value).where(schema_info.c.key == "schema_version")).scalar()
        if current is not None and int(current) > SCHEMA_VERSION:
            raise RuntimeError(
                f"the database has schema version {current}, newer than this code's {SCHEMA_VERSION}; upgrade the code"
            )
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        conn.execute(
            insert(schema_info)
            .values(key="schema_version", value=str(SCHEMA_VERSION))
            .on_conflict_do_update(index_elements=["key"], set_={"value": str(SCHEMA_VERSION)})
        )
        conn.execute(
            insert(settings).on_conflict_do_nothing(),
            [{"key": k, "value": v} for k, v in DEFAULT_SETTINGS.items()],
        )
        seed_codes(conn)
    return SCHEMA_VERSION


def schema_version(engine: Engine | None = None) -> int | None:
    engine = engine or get_engine()
    with engine.connect() as conn:
        if not engine.dialect.has_table(conn, "schema_info"):
            return None
        value = conn.execute(select(schema_info.c.value).where(schema_info.c.key == "schema_version")).scalar()
        return int(value) if value is not None else None
