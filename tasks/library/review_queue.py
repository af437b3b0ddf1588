"""The review queue of Find Duplicate Users (table duplicate_pairs), shared by the scan that fills it,
the `duplicates` commands a person reviews it with, and Merge Users, which takes accepted pairs from
it and marks the pairs it merged.

A pair is one unordered pair of records (user_id_a < user_id_b) with a proposed direction (From, the
duplicate; To, the record to keep). Its status goes proposed -> accepted | rejected (a person may
change their mind between these two) -> merged (final, set by Merge Users). A rejected pair is never
proposed again.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Connection, and_, insert, select, tuple_, update

from tasks.db.schema import duplicate_pairs as q

PROPOSED, ACCEPTED, REJECTED, MERGED = "proposed", "accepted", "rejected", "merged"
STATUSES = (PROPOSED, ACCEPTED, REJECTED, MERGED)
REVIEWABLE = (PROPOSED, ACCEPTED, REJECTED)

# The columns of `find-duplicates --export` after from_user,to_user: the probability, the pair's round
# in its cluster, the cluster, why Merge Users would refuse it, the evidence, which direction rule
# chose the To user, and the scorer's word per field. Merge Users' pairs-file reader accepts them as
# they are (and ignores them, apart from merge_round with --round).
EXPORT_COLUMNS = ("probability", "merge_round", "cluster", "merge_refusal", "evidence", "direction",
                  "first_name", "last_name", "middle_name", "birth_date", "email", "phone", "postal_code",
                  "identifiers")
# The review CSV (`duplicates list --csv FILE`, `duplicates review FILE`): a person fills in `decision`
# (accept, reject, or empty to leave the pair as it is) in a spreadsheet.
REVIEW_COLUMNS = ("pair_id", "decision", "status", "from_user", "to_user", "probability", "merge_round",
                  "merge_refusal", "evidence", "review_note")

IN_CHUNK = 500


def _chunks(values: Sequence[Any], size: int = IN_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def known_pairs(conn: Connection) -> pd.DataFrame:
    """Every pair ever queued: user_id_a, user_id_b, status (a library has few enough to read whole)."""
    rows = conn.execute(select(q.c.user_id_a, q.c.user_id_b, q.c.status)).all()
    return pd.DataFrame.from_records([tuple(r) for r in rows], columns=["user_id_a", "user_id_b", "status"])


def statuses_of(conn: Connection, pairs: Sequence[tuple[int, int]]) -> dict[tuple[int, int], str]:
    """The queue status of these unordered pairs (a, b with a < b), where queued."""
    out: dict[tuple[int, int], str] = {}
    for chunk in _chunks(list(pairs), 300):
        rows = conn.execute(select(q.c.user_id_a, q.c.user_id_b, q.c.status)
                            .where(tuple_(q.c.user_id_a, q.c.user_id_b).in_(list(chunk)))).all()
        out.update({(int(a), int(b)): s for a, b, s in rows})
    return out


def add_proposed(conn: Connection, rows: list[dict[str, Any]], run_id: str, now: dt.datetime) -> int:
    """Queue pairs as proposed. Each row: from_user_id, to_user_id, from_primary_id, to_primary_id,
    probability, evidence, merge_refusal, merge_round."""
    if not rows:
        return 0
    values = [{**r, "user_id_a": min(r["from_user_id"], r["to_user_id"]),
               "user_id_b": max(r["from_user_id"], r["to_user_id"]),
               "status": PROPOSED, "proposed_by_run": run_id, "proposed_at": now} for r in rows]
    conn.execute(insert(q), values)
    return len(values)


def review(conn: Connection, pair_ids: Sequence[int], status: str, *, by: str | None, note: str | None,
           now: dt.datetime) -> dict[int, str]:
    """Accept or reject pairs; returns pair_id -> what happened ("accepted", "rejected", or why not:
    "not found", "already merged")."""
    if status not in (ACCEPTED, REJECTED, PROPOSED):
        raise ValueError(f"a review sets accepted, rejected or proposed, not {status!r}")
    ids = sorted({int(i) for i in pair_ids})
    current: dict[int, str] = {}
    for chunk in _chunks(ids):
        current.update({int(i): s for i, s in conn.execute(select(q.c.pair_id, q.c.status)
                                                            .where(q.c.pair_id.in_(list(chunk))))})
    result: dict[int, str] = {}
    changeable = [i for i in ids if current.get(i) in REVIEWABLE]
    for chunk in _chunks(changeable):
        conn.execute(update(q).where(and_(q.c.pair_id.in_(list(chunk)), q.c.status.in_(REVIEWABLE)))
                     .values(status=status, reviewed_by=by, reviewed_at=now, review_note=note))
    for i in ids:
        result[i] = status if i in changeable else ("already merged" if current.get(i) == MERGED else "not found")
    return result


def list_pairs(conn: Connection, statuses: Sequence[str] = ()) -> pd.DataFrame:
    """The queue's pairs (all, or of these statuses), best first."""
    stmt = select(q).order_by(q.c.probability.desc(), q.c.pair_id)
    if statuses:
        stmt = stmt.where(q.c.status.in_(list(statuses)))
    result = conn.execute(stmt)
    return pd.DataFrame.from_records([tuple(r) for r in result], columns=list(result.keys()))


def accepted_for_merge(conn: Connection) -> tuple[pd.DataFrame, int]:
    """The accepted pairs a merge run takes, and how many accepted pairs wait for a later run.

    A run takes at most one pair per To user (the lowest round): the From users of a cluster are
    merged into their To user one run after another, so no run names a user twice (Merge Users'
    USER_IN_SEVERAL_PAIRS). A pair whose From user is the To user of another accepted pair waits too."""
    accepted = list_pairs(conn, [ACCEPTED])
    if accepted.empty:
        return accepted, 0
    ordered = accepted.sort_values(["merge_round", "probability", "pair_id"], ascending=[True, False, True])
    taken = ordered.drop_duplicates("to_user_id")
    taken = taken[~taken["from_user_id"].isin(accepted["to_user_id"])]
    taken = taken.drop_duplicates("from_user_id")
    return taken.reset_index(drop=True), len(accepted) - len(taken)


def mark_merged(conn: Connection, pairs: Iterable[tuple[int, int]], run_id: str, now: dt.datetime) -> int:
    """Mark the queued pairs (From user id, To user id) a merge has just merged; returns how many."""
    marked = 0
    for chunk in _chunks(list(pairs), 300):
        marked += conn.execute(
            update(q).where(and_(tuple_(q.c.from_user_id, q.c.to_user_id).in_(list(chunk)),
                                 q.c.status.in_((PROPOSED, ACCEPTED))))
            .values(status=MERGED, merged_by_run=run_id, merged_at=now)).rowcount
    return marked
