"""Library-wide settings kept in the database (the delete-user policy among them)."""
from __future__ import annotations

from sqlalchemy import Connection, select, update

from tasks.db.schema import settings


def get_setting(conn: Connection, key: str) -> str | None:
    return conn.execute(select(settings.c.value).where(settings.c.key == key)).scalar()


def put_setting(conn: Connection, key: str, value: str) -> None:
    if conn.execute(update(settings).where(settings.c.key == key).values(value=value)).rowcount == 0:
        conn.execute(settings.insert().values(key=key, value=value))
