"""Row locks a batch takes before it re-reads its guards, in id order (no deadlocks between batches).

`with_for_update()` is rendered by SQLAlchemy for each dialect: `FOR UPDATE` on PostgreSQL, nothing on
SQLite, where the batch's `BEGIN IMMEDIATE` already holds the database's one write lock.
"""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, func, select

from tasks.db.schema import fees, users
from tasks.db.statements import in_list


def _counted(lock):
    """The lock as `SELECT count(*) FROM (… FOR UPDATE)`: every row is locked as the count reads it,
    and one number comes back to Python instead of a row per locked id (a waive batch's fees: 0.4 s of
    the flow's Python time at 1,000,000 users, BENCHMARKS.md change 19)."""
    return select(func.count()).select_from(lock.subquery())


# The batch's ids bound once, as one array on PostgreSQL (tasks/db/statements.in_list), like every other
# batch statement: not thousands of bound values a lock (BENCHMARKS.md, change 13).
LOCK_USERS = _counted(select(users.c.id).where(in_list(users.c.id, "user_ids")).order_by(users.c.id)
                      .with_for_update())
LOCK_ACTIVE_FEES = _counted(select(fees.c.id).where(in_list(fees.c.user_id, "user_ids"), fees.c.status == "ACTIVE")
                            .order_by(fees.c.id).with_for_update())


def _ids(user_ids: Iterable[object]) -> list[int]:
    return sorted({int(i) for i in user_ids})


def lock_users(conn: Connection, user_ids: Iterable[object]) -> None:
    """The batch lock of a job that changes users: the users and their active fees. New loans,
    requests and fees for these users (their foreign keys take KEY SHARE locks) wait for the user
    lock; payments, which touch only the fee, wait for the fee lock."""
    ids = _ids(user_ids)
    conn.execute(LOCK_USERS, {"user_ids": ids}).scalar_one()
    _lock_active_fees(conn, ids)


def lock_active_fees(conn: Connection, user_ids: Iterable[object]) -> None:
    """The batch lock of a job that changes only fees: the users' active fees, so a payment cannot
    slip in between a fee's WAIVE transaction and its closing. A fee added meanwhile needs no lock:
    it was not there when the batch re-read the user's total, so the result is the same as the batch
    committing first and the fee being added after."""
    _lock_active_fees(conn, _ids(user_ids))


def _lock_active_fees(conn: Connection, ids: list[int]) -> None:
    # A payment is an UPDATE of the fee alone (no lock on the user row), so without this it could
    # slip in between a batch's WAIVE transactions and its closing of the fee.
    conn.execute(LOCK_ACTIVE_FEES, {"user_ids": ids}).scalar_one()
