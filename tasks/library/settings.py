"""Library-wide settings kept in the database (the delete-user policy among them)."""
from __future__ import annotations

import os

from sqlalchemy import Connection, select, update

from tasks.db.schema import settings


def get_setting(conn: Connection, key: str) -> str | None:
    return conn.execute(select(settings.c.value).where(settings.c.key == key)).scalar()


def put_setting(conn: Connection, key: str, value: str) -> None:
    if conn.execute(update(settings).where(settings.c.key == key).values(value=value)).rowcount == 0:
        conn.execute(settings.insert().values(key=key, value=value))


# Settings of the library that the jobs read from their environment (the worker's, or prefect.yaml's
# job_variables), like LIBRARY_TIMEZONE: not secrets, and the same for every run of a deployment.

def library_currency() -> str:
    """The currency amounts are in, as reports and the approval form name it: LIBRARY_CURRENCY (EUR)."""
    return os.environ.get("LIBRARY_CURRENCY", "").strip() or "EUR"


def library_approvers() -> list[str]:
    """Who may approve a real run: LIBRARY_APPROVERS, names separated by commas. Empty: anyone."""
    return [name.strip() for name in os.environ.get("LIBRARY_APPROVERS", "").split(",") if name.strip()]
