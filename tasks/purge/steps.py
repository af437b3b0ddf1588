"""Purge User Records in the database: select the candidates, lock and purge a batch, and the
blast-radius guard. The rules that decide who is purged are in tasks/purge/rules.py."""
from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Connection

from tasks.db.engine import get_engine, read_connection
from tasks.db.row_locks import lock_users
from tasks.db.sql import sql_for
from tasks.engine.definition import JobRun, Preview
from tasks.engine.parameters import named
from tasks.engine.records import utcnow
from tasks.engine.selection import read_chunks, restrict_params
from tasks.errors import JobRefused
from tasks.library.money import to_minor
from tasks.library.policy import apply_policy, current_policy, lock_policy_shared
from tasks.purge.parameters import PurgeParameters
from tasks.purge.rules import decide_purge, purge_cutoff

WAIVE_REASON = "USER_PURGED"


def select(conn: Connection, parameters: PurgeParameters, run: JobRun,
           keys: Sequence[Any] | None = None) -> Iterator[pd.DataFrame]:
    cutoff = purge_cutoff(run.as_of, parameters.grace_period_days)
    return read_chunks(conn, "purge/select_candidates", {"cutoff": cutoff, **restrict_params(keys)})


def decide(candidates: pd.DataFrame, parameters: PurgeParameters, run: JobRun) -> pd.DataFrame:
    return decide_purge(
        candidates,
        cutoff=purge_cutoff(run.as_of, parameters.grace_period_days),
        record_types=parameters.record_types,
        user_groups=parameters.user_groups,
        max_owed_minor=to_minor(parameters.max_owed),
    )


def count(eligible: pd.DataFrame) -> dict[str, Any]:
    return {
        "eligible": len(eligible),
        "purged": len(eligible),
        "fines_waived": int(eligible["active_fees"].astype("int64").sum()),
        "amount_waived_minor": int(eligible["owed_minor"].astype("int64").sum()),
    }


def lock(conn: Connection, users: pd.DataFrame) -> None:
    """The policy first (a stricter policy set meanwhile waits for this batch, then reaches its users
    too), then the users, in the same order as `policy set` takes them: no deadlock between the two.
    Proxy rows, which a batch running beside this one may share, are locked last (policy/delete_proxies)."""
    lock_policy_shared(conn)
    lock_users(conn, users["user_id"])


def purge(conn: Connection, users: pd.DataFrame, parameters: PurgeParameters, run: JobRun) -> dict[str, Any]:
    """Waive the users' active fees, mark them purged, and reduce them to what the policy keeps."""
    ids = [int(i) for i in users["user_id"]]
    policy = current_policy(conn)
    fee_totals = conn.execute(sql_for(conn, "purge/select_fee_totals"), {"ids": ids}).all()
    # Audit events are written by the database from the rows themselves: a statement per batch
    # instead of a row per user sent from Python (the largest cost of a batch when profiled).
    events = {"ids": ids, "run_id": run.run_id, "created_at": utcnow()}
    conn.execute(sql_for(conn, "purge/insert_fees_waived_events"), events)
    conn.execute(sql_for(conn, "purge/insert_waive_transactions"),
                 {"ids": ids, "reason": WAIVE_REASON, "comment": "waived by Purge User Records",
                  "now": run.now, "run_id": run.run_id})
    conn.execute(sql_for(conn, "purge/close_active_fees"), {"ids": ids})
    conn.execute(sql_for(conn, "purge/insert_user_purged_events"),
                 {**events, "details": json.dumps({"policy": policy}, sort_keys=True)})
    # Marking the users purged is part of the policy's one rewrite of each user row.
    purged = apply_policy(conn, policy, ids, purged_at=run.now)
    if len(purged) != len(ids):
        # Every user of the batch was re-checked under lock as not yet purged; anything else is a bug,
        # and the whole batch rolls back rather than leave users half purged.
        raise RuntimeError(f"the policy reached {len(purged)} of the batch's {len(ids)} users")
    return {
        "purged": len(ids),
        "fines_waived": sum(int(r.fees) for r in fee_totals),
        "amount_waived_minor": sum(int(r.amount_minor) for r in fee_totals),
    }


def streams_selection(parameters: PurgeParameters) -> bool:
    """The blast-radius guard counts the whole selection before anything changes, when it is set."""
    return parameters.max_users is None and parameters.max_share is None


def blast_radius_guard(run: JobRun, preview: Preview, parameters: PurgeParameters) -> None:
    """Refuse a run that would purge more users than the limits allow, before anything changes."""
    would_purge = preview.eligible_units
    if parameters.max_users is not None and would_purge > parameters.max_users:
        raise JobRefused(f"this run would purge {would_purge:,} users, more than {named('max_users')} "
                         f"({parameters.max_users:,}) allows; nothing was changed. Check the parameters, or "
                         "raise the limit if this is intended.")
    if parameters.max_share is None or would_purge == 0:
        return
    with read_connection(get_engine(run.database_url)) as conn:
        live = conn.execute(sql_for(conn, "common/count_live_users")).scalar() or 0
    # Divide rather than multiply: 29 of 100 users is exactly a share of 0.29, not above it.
    if would_purge / live > parameters.max_share:
        raise JobRefused(f"this run would purge {would_purge:,} of {live:,} users ({would_purge / live:.1%}), "
                         f"more than {named('max_share')} ({parameters.max_share:g}) allows; nothing was "
                         "changed. Check the parameters, or raise the limit if this is intended.")
