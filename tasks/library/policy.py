"""The delete-user policy: what remains of a user after the purge job removes them.

Levels, from most kept to least (docs/delete-user-policy.md has the exact table):
- keep-fully-reportable: the user row (names, primary id, dates, statistical fields), statistics,
  loan and request history and the fee ledger stay; contacts, identifiers, notes, blocks,
  attachments, roles and proxies go.
- keep-statistics: as above, and names, birth date, expiry date, external id, free-text comments
  (fees, fee transactions, statistics) and every `extra` (the Alma fields outside the format kept as
  loaded, on the user row, statistics, loans, requests, fees, transactions) go. At keep-fully-reportable
  the user row's extra stays with the row; the segments removed take theirs with them.
- keep-statistics-remove-id (default): as above, and the primary id goes: nothing left names the person.
- fully-remove: the user row and everything attached (loan and request history, fees, ledger) go.
Making the policy stricter applies it to users purged earlier; a looser one cannot restore data.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine

from tasks.db.engine import plan_by_ids, write_transaction
from tasks.errors import InvalidInput
from tasks.library.settings import get_setting, put_setting
from tasks.db.sql import sql_for
from tasks.db.statements import (advisory_lock, clear_column_of_users, delete_proxy_rows,
                                 delete_rows_of_users)
from tasks.segments import KEPT_TABLES, PERSONAL_TABLES

POLICY_LEVELS = {
    "keep-fully-reportable": "keeps the user row with names and primary id, statistics, loan/request history "
                             "and fee ledger; removes contacts, identifiers, notes, blocks, attachments, roles, proxies",
    "keep-statistics": "as keep-fully-reportable, and also removes names, birth date, expiry date, "
                       "external id, free-text comments on fees and statistics, and the Alma fields kept "
                       "beyond the typed ones (extra) on the user, statistics, loans, requests and fees",
    "keep-statistics-remove-id": "as keep-statistics, and also removes the primary id (default)",
    "fully-remove": "removes the user and everything attached, loan history and fee ledger included",
}
STRICTNESS = {level: rank for rank, level in enumerate(POLICY_LEVELS)}
DEFAULT_POLICY = "keep-statistics-remove-id"
SETTING = "delete_user_policy"
# Purge batches hold this lock shared, `policy set` exclusively (PostgreSQL advisory lock; SQLite's
# single writer serialises them anyway): a batch never commits users under a policy already replaced.
POLICY_LOCK_KEY = 0x5055524745  # "PURGE"

# Every level: the parts that reach a person (tasks/segments.py) go.
_SEGMENT_STATEMENTS = [delete_rows_of_users(table) for table in PERSONAL_TABLES]
# keep-statistics and stricter: free text that may name the person goes too, and what the kept rows
# carried beyond the typed columns (`extra`: the Alma fields outside the format, tasks/alma/format.py;
# it can hold anything). The removed parts take their extra with them; the user row's goes in
# policy/reduce_users.
_COMMENT_STATEMENTS = [clear_column_of_users("fees", "comment"),
                       clear_column_of_users("fee_transactions", "comment"),
                       clear_column_of_users("user_statistics", "statistic_note"),
                       *(clear_column_of_users(table, "extra") for table in KEPT_TABLES)]
# What reduce_users empties on the user row at each level (fully-remove deletes the row instead).
_USER_ROW = {
    "keep-fully-reportable": {"anonymise": 0, "remove_id": 0},
    "keep-statistics": {"anonymise": 1, "remove_id": 0},
    "keep-statistics-remove-id": {"anonymise": 1, "remove_id": 1},
}
# After the user rows (fully-remove deletes them, and the cascade takes everything attached); the
# proxy rows come last of all (policy/delete_proxies.postgresql.sql says why).
_STATEMENTS_AFTER_USER_ROWS = {
    "keep-fully-reportable": _SEGMENT_STATEMENTS,
    "keep-statistics": [*_SEGMENT_STATEMENTS, *_COMMENT_STATEMENTS],
    "keep-statistics-remove-id": [*_SEGMENT_STATEMENTS, *_COMMENT_STATEMENTS],
}
# `policy set` reduces earlier-purged users this many at a time (each statement's id list).
REDUCE_CHUNK = 5_000


def check_level(level: str) -> str:
    if level not in POLICY_LEVELS:
        raise InvalidInput(f"unknown delete-user policy {level!r}; valid levels: {', '.join(POLICY_LEVELS)}")
    return level


def looser_than(level: str) -> list[str]:
    return [other for other in POLICY_LEVELS if STRICTNESS[other] < STRICTNESS[level]]


def current_policy(conn: Connection) -> str:
    return get_setting(conn, SETTING) or DEFAULT_POLICY


def get_policy(engine: Engine) -> str:
    with engine.connect() as conn:
        return current_policy(conn)


def lock_policy_shared(conn: Connection) -> None:
    """Inside a purge batch: the policy cannot change until the batch commits."""
    conn.execute(advisory_lock(POLICY_LOCK_KEY, shared=True)).all()


def apply_policy(conn: Connection, level: str, user_ids: Sequence[int], purged_at: Any = None) -> list[int]:
    """Reduce the users `user_ids` to what `level` keeps and return the ids it reduced. A purge batch
    passes `purged_at` (the users are marked purged in the same rewrite of their row); `policy set`
    passes users purged earlier. Every statement takes the id list itself: one index lookup per user,
    not a search for purged users (profiled at 1,000,000 users, BENCHMARKS.md)."""
    ids = [int(i) for i in user_ids]
    if not ids:
        return []
    primary_ids = dict(conn.execute(sql_for(conn, "policy/select_primary_ids"), {"ids": ids}).all())
    # Whatever the level: the person is not kept in the undo record of a merge into them.
    conn.execute(sql_for(conn, "policy/delete_merge_undo_records"), {"ids": ids})

    def delete_proxies(of: list[int]) -> None:
        named = [primary_ids[i] for i in of if i in primary_ids] or ["-"]
        conn.execute(delete_proxy_rows(), {"ids": of, "primary_ids": named})

    if level == "fully-remove":
        # The cascade would delete the users' own proxy rows in no particular order: lock them first.
        delete_proxies(ids)
        return sorted(int(i) for i in conn.execute(sql_for(conn, "policy/delete_users"), {"ids": ids}).scalars())
    reduced = sorted(int(i) for i in conn.execute(sql_for(conn, "policy/reduce_users"), {
        "ids": ids, "purged_at": purged_at, "policy": level, "looser": looser_than(level) or ["-"],
        **_USER_ROW[level]}).scalars())
    if reduced:
        for statement in _STATEMENTS_AFTER_USER_ROWS[level]:
            conn.execute(sql_for(conn, statement) if isinstance(statement, str) else statement, {"ids": reduced})
        delete_proxies(reduced)
    return reduced


def set_policy(engine: Engine, level: str) -> int:
    """Set the policy; when it is stricter than before, users purged earlier are reduced to it too.
    Returns how many earlier-purged users it reached (those kept under a looser level)."""
    check_level(level)
    with write_transaction(engine) as conn:
        plan_by_ids(conn)
        conn.execute(advisory_lock(POLICY_LOCK_KEY)).all()
        previous = current_policy(conn)
        put_setting(conn, SETTING, level)
        if STRICTNESS[level] <= STRICTNESS[previous]:
            return 0
        earlier = conn.execute(sql_for(conn, "policy/select_users_to_reduce"),
                               {"looser": looser_than(level)}).scalars().all()
        for start in range(0, len(earlier), REDUCE_CHUNK):
            apply_policy(conn, level, earlier[start:start + REDUCE_CHUNK])
        return len(earlier)
