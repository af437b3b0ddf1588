"""How long a merge can be undone: the undo records of merged pairs (table merge_undo) are kept this
many days after the merge, then removed by the nightly housekeeping flow (flows/undo_housekeeping.py).
A library setting, like the delete-user policy: `python -m flows undo-retention show|set DAYS`."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, Engine, delete

from tasks.db.engine import write_transaction
from tasks.db.schema import merge_undo
from tasks.errors import InvalidInput
from tasks.library.settings import get_setting, put_setting

SETTING = "merge_undo_retention_days"
DEFAULT_DAYS = 30
MAX_DAYS = 3650


def retention_days(conn: Connection) -> int:
    value = get_setting(conn, SETTING)
    return int(value) if value is not None else DEFAULT_DAYS


def get_retention_days(engine: Engine) -> int:
    with engine.connect() as conn:
        return retention_days(conn)


def check_days(days: int) -> int:
    if not 0 <= days <= MAX_DAYS:
        raise InvalidInput(f"undo retention {days!r} days: give a number of days from 0 to {MAX_DAYS}")
    return days


def set_retention_days(engine: Engine, days: int) -> None:
    """Applies to every undo record at once: undo refuses a pair older than the new period, and the next
    housekeeping run removes its record."""
    check_days(days)
    with write_transaction(engine) as conn:
        put_setting(conn, SETTING, str(days))


def expiry_cutoff(now: dt.datetime, days: int) -> dt.datetime:
    """Merges before this time can no longer be undone."""
    return now - dt.timedelta(days=days)


def remove_expired(engine: Engine, now: dt.datetime) -> int:
    """Delete the undo records past the retention period; returns how many."""
    with write_transaction(engine) as conn:
        cutoff = expiry_cutoff(now, retention_days(conn))
        return conn.execute(delete(merge_undo).where(merge_undo.c.merged_at < cutoff)).rowcount or 0
