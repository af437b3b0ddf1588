"""Bulk Fine Waiving: close the small fines of many users at once (an amnesty, a goodwill gesture).

A user whose total outstanding balance (all active fees, of every type) is above the threshold gets
nothing waived. Every other user in scope has each active fee that matches the limits (fine type,
creation date) waived: balance 0, status CLOSED, and a WAIVE transaction with the amount, reason,
comment and time. Optionally users with overdue loans are left out; protected users always are.
"""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pandas as pd
from prefect import flow
from pydantic import Field, ValidationError, ValidationInfo, field_validator

from tasks.db.row_locks import lock_active_fees
from tasks.library.codes import require_codes
from tasks.errors import InvalidInput
from tasks.engine.definition import CHANGED_SINCE_SELECTION, BatchJob, JobRun
from tasks.engine.parameters import JobParameters
from tasks.engine.records import flow_run_namer, utcnow
from tasks.library.money import format_amount, to_minor
from tasks.engine.params import parse_date, validation_message
from tasks.engine.runner import run_job
from tasks.engine.selection import read_chunks, restrict_params
from tasks.db.sql import sql_for
from tasks.waive.rules import decide_waive

JOB = "bulk-fine-waiving"
# Keeps every statement's bound list well under SQLite's variable limit, whatever the batch size.
FEES_PER_STATEMENT = 5_000


class WaiveParameters(JobParameters):
    """Bulk Fine Waiving. Dry run unless `dry_run` is false."""

    max_fine_threshold: Decimal = Field(
        gt=0, max_digits=12, decimal_places=2,
        description="Users whose total outstanding balance (all active fees, every type) is above this get "
                    "nothing waived (ABOVE_FINE_THRESHOLD). A total exactly at the threshold is waived.",
    )
    waive_reason: str = Field(
        min_length=1, max_length=64,
        description="Why the fees are waived: a code from the waive-reason code table (e.g. AMNESTY).",
    )
    comment: str | None = Field(
        default=None, max_length=2000, description="Recorded on every WAIVE transaction.",
    )
    exclude_overdue: bool = Field(
        default=False,
        description="Leave out users with an active loan due before the run time (HAS_OVERDUE_LOANS).",
    )
    user_groups: list[str] = Field(
        default_factory=list, description="Only users in these user groups (codes). Empty: all.",
    )
    fine_types: list[str] = Field(
        default_factory=list,
        description="Only fees of these fee types (codes) are waived; the threshold still counts every fee. "
                    "Empty: all types.",
    )
    created_from: dt.date | None = Field(
        default=None, description="Only fees created on or after this date (YYYY-MM-DD).",
    )
    created_to: dt.date | None = Field(
        default=None, description="Only fees created on or before this date (YYYY-MM-DD).",
    )

    @field_validator("user_groups", "fine_types")
    @classmethod
    def _no_blank_codes(cls, codes: list[str]) -> list[str]:
        if any(not c.strip() for c in codes):
            raise ValueError("codes may not be empty")
        return codes

    @field_validator("created_to")
    @classmethod
    def _date_range_in_order(cls, created_to: dt.date | None, info: ValidationInfo) -> dt.date | None:
        created_from = info.data.get("created_from")
        if created_to and created_from and created_to < created_from:
            raise ValueError(f"the creation-date range ends before it starts ({created_from})")
        return created_to


def select_candidates(conn, parameters: WaiveParameters, run: JobRun, keys=None):
    return read_chunks(conn, "waive/select_candidates",
                       {"need_due": int(parameters.exclude_overdue),
                        "need_created": int(parameters.created_from is not None or parameters.created_to is not None),
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


def waive_batch(conn, fees: pd.DataFrame, parameters: WaiveParameters, run: JobRun) -> dict[str, Any]:
    """Waive the fees that were re-checked under lock: WAIVE transactions first, then close them."""
    fee_ids = [int(i) for i in fees["fee_pk"]]
    created_at = utcnow()
    for start in range(0, len(fee_ids), FEES_PER_STATEMENT):
        chunk = fee_ids[start:start + FEES_PER_STATEMENT]
        # The audit events come from the fee rows inside the database, before they are closed: one
        # statement per chunk instead of a row per fee sent from Python.
        conn.execute(sql_for(conn, "waive/insert_fee_waived_events"),
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


WAIVE = BatchJob(
    name=JOB,
    key="user_id",
    label="primary_id",
    select=select_candidates,
    decide=decide,
    count=count,
    apply=waive_batch,
    lock=lambda conn, fees: lock_active_fees(conn, fees["user_id"]),
    # A fee paid, changed or added since selection changes one of these; that user is left alone.
    fingerprint=("fee_pk", "balance_minor", "owed_minor", "active_fees"),
    selection_counts=("users_eligible",),
    shape_summary=add_users_considered,
    sample_columns=("user_group", "owed"),
)


def validate(conn, parameters: WaiveParameters) -> None:
    require_codes(conn, "waive-reason", [parameters.waive_reason], "waive reason")
    require_codes(conn, "fee-type", parameters.fine_types, "fine type")
    require_codes(conn, "user-group", parameters.user_groups, "user group")


@flow(name=JOB, flow_run_name=flow_run_namer("waive"), log_prints=True, validate_parameters=True)
def bulk_fine_waiving(parameters: WaiveParameters) -> dict[str, Any]:
    """Bulk Fine Waiving (dry run unless parameters.dry_run is false)."""
    return run_job(WAIVE, parameters, title="Bulk Fine Waiving", unit_name="users", validate=validate)


def waive_parameters_from_cli(args) -> WaiveParameters:
    values: dict[str, Any] = {
        "dry_run": not args.confirm,
        "max_fine_threshold": args.max_fine_threshold,
        "waive_reason": args.reason,
        "exclude_overdue": args.exclude_overdue,
        "user_groups": args.user_group,
        "fine_types": args.fine_type,
        "require_approval": args.require_approval,
    }
    dates = {"created_from": ("--created-from", args.created_from), "created_to": ("--created-to", args.created_to)}
    values.update({k: parse_date(flag, v) for k, (flag, v) in dates.items() if v is not None})
    optional = {"comment": args.comment, "as_of": args.as_of, "batch_size": args.batch_size}
    values.update({k: v for k, v in optional.items() if v is not None})
    try:
        return WaiveParameters(**values)
    except ValidationError as exc:
        raise InvalidInput(validation_message(exc, CLI_FLAGS)) from None


CLI_FLAGS = {
    "max_fine_threshold": "--max-fine-threshold", "waive_reason": "--reason", "comment": "--comment",
    "user_groups": "--user-group", "fine_types": "--fine-type", "created_from": "--created-from",
    "created_to": "--created-to", "as_of": "--as-of", "batch_size": "--batch-size",
}
