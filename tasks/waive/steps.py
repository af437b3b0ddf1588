"""Bulk Fine Waiving in the database: select the active fees in scope, lock and waive a batch. The
rules that decide which fees are waived are in tasks/waive/rules.py."""
from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Connection

from sqlalchemy import DateTime, Text, bindparam, insert, literal, select

from tasks.db.row_locks import lock_active_fees
from tasks.db.schema import fees, job_events
from tasks.db.statements import JsonString, in_list
from tasks.db.sql import sql_for
from tasks.engine.definition import JobRun
from tasks.engine.records import utcnow
from tasks.engine.selection import read_chunks, restrict_params
from tasks.library.money import format_amount, to_minor
from tasks.reasons import CHANGED_SINCE_SELECTION
from tasks.waive.parameters import WaiveParameters
from tasks.waive.rules import decide_waive

# Keeps every statement's bound list well under SQLite's variable limit, whatever the batch size.
FEES_PER_STATEMENT = 5_000


def fee_waived_events():
    """The FEE_WAIVED audit events of a chunk of fees, one per fee, from the fee rows inside the
    database (before the fees are closed): details {"fee_type": ..., "reason": ...}."""
    f = fees
    details = (literal('{"fee_type": ') + JsonString(f.c.fee_type) + literal(', "reason": ')
               + bindparam("reason_json", type_=Text) + literal("}"))
    rows = select(bindparam("run_id", type_=Text), literal("FEE_WAIVED"), f.c.user_id, f.c.id, f.c.balance_minor,
                  details, bindparam("created_at", type_=DateTime)).where(
        in_list(f.c.id, "fee_ids"), f.c.status == "ACTIVE", f.c.balance_minor > 0)
    columns = ["run_id", "event", "user_id", "fee_id", "amount_minor", "details", "created_at"]
    return insert(job_events).from_select(columns, rows)


FEE_WAIVED_EVENTS = fee_waived_events()


def select(conn: Connection, parameters: WaiveParameters, run: JobRun,
           keys: Sequence[Any] | None = None) -> Iterator[pd.DataFrame]:
    dated = parameters.created_from is not None or parameters.created_to is not None
    return read_chunks(conn, "waive/select_candidates",
                       {"need_due": int(parameters.exclude_overdue), "need_created": int(dated),
                        **restrict_params(keys)})


def decide(candidates: pd.DataFrame, parameters: WaiveParameters, run: JobRun) -> pd.DataFrame:
    decided = decide_waive(
        candidates,
        threshold_minor=to_minor(parameters.max_fine_threshold),
        now=run.now,
        fine_types=parameters.fine_types,
        user_groups=parameters.user_groups,
        created_from=parameters.created_from,
        created_to=parameters.created_to,
        exclude_overdue=parameters.exclude_overdue,
    )
    # The report shows amounts, not cents; a library's totals repeat, so each is formatted once.
    owed = decided["owed_minor"]
    decided["owed"] = owed.map({v: format_amount(v) for v in pd.unique(owed)})
    return decided


def waived_counts(fees: pd.DataFrame) -> dict[str, Any]:
    """What waiving these fee rows does (the preview's promise and a batch's result alike)."""
    amounts = fees["balance_minor"].astype("int64")
    return {
        "users_waived": int(fees["user_id"].nunique()),
        "fines_waived": len(fees),
        "amount_waived_minor": int(amounts.sum()),
        "amount_waived_by_type_minor": {str(t): int(v) for t, v in amounts.groupby(fees["fee_type"]).sum().items()},
    }


def count(eligible: pd.DataFrame) -> dict[str, Any]:
    return {"users_eligible": int(eligible["user_id"].nunique()), **waived_counts(eligible)}


def lock(conn: Connection, fees: pd.DataFrame) -> None:
    lock_active_fees(conn, fees["user_id"])


def waive(conn: Connection, fees: pd.DataFrame, parameters: WaiveParameters, run: JobRun) -> dict[str, Any]:
    """Waive the fees that were re-checked under lock: WAIVE transactions first, then close them."""
    fee_ids = [int(i) for i in fees["fee_pk"]]
    created_at = utcnow()
    for start in range(0, len(fee_ids), FEES_PER_STATEMENT):
        chunk = fee_ids[start:start + FEES_PER_STATEMENT]
        # The audit events come from the fee rows inside the database, before they are closed: one
        # statement per chunk instead of a row per fee sent from Python.
        conn.execute(FEE_WAIVED_EVENTS,
                     {"fee_ids": chunk, "reason_json": json.dumps(parameters.waive_reason), "run_id": run.run_id,
                      "created_at": created_at})
        conn.execute(sql_for(conn, "waive/insert_waive_transactions"),
                     {"fee_ids": chunk, "reason": parameters.waive_reason, "comment": parameters.comment,
                      "now": run.now, "run_id": run.run_id})
        conn.execute(sql_for(conn, "waive/close_fees"), {"fee_ids": chunk})
    return waived_counts(fees)


def add_users_considered(summary: dict[str, Any]) -> dict[str, Any]:
    """Users considered = every user with a fee in scope: the eligible ones and those skipped at
    selection (users changed since selection were eligible then, so they are counted as eligible)."""
    at_selection = sum(v for k, v in summary["skipped"].items() if k != CHANGED_SINCE_SELECTION)
    shaped: dict[str, Any] = {}
    for key, value in summary.items():
        if key == "users_eligible":
            shaped["users_considered"] = value + at_selection
        shaped[key] = value
    return shaped
