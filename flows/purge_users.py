"""Purge User Records: remove users whose purge date has passed, nightly or ad hoc.

A user is purged when the purge date is before the run date minus the grace period, the record
type and user group are within the limits, the outstanding balance is not above the maximum owed,
no active loan or request is attached, and the user is not protected. Purging waives the user's
active fees (reason USER_PURGED) and then removes the user as the delete-user policy says.
"""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Literal, get_args

import pandas as pd
from prefect import flow
from pydantic import Field, ValidationError, field_validator

from tasks.db.row_locks import lock_users
from tasks.library.codes import require_codes
from tasks.db.engine import get_engine, read_connection
from tasks.errors import InvalidInput, JobRefused
from tasks.engine.definition import BatchJob, JobRun
from tasks.engine.parameters import JobParameters
from tasks.engine.records import flow_run_namer, utcnow
from tasks.library.money import to_minor
from tasks.engine.params import validation_message
from tasks.library.policy import apply_policy, current_policy, lock_policy_shared
from tasks.purge.rules import decide_purge, purge_cutoff
from tasks.engine.runner import Preview, run_job
from tasks.engine.selection import read_chunks, restrict_params
from tasks.db.sql import sql_for

JOB = "purge-user-records"
WAIVE_REASON = "USER_PURGED"

# Alma's record types are fixed (unlike user groups, which are the library's own codes), so the
# Prefect UI offers them as a list to pick from.
RecordType = Literal["PUBLIC", "STAFF", "CONTACT"]
RECORD_TYPES: tuple[str, ...] = get_args(RecordType)


class PurgeParameters(JobParameters):
    """Purge User Records. Dry run unless `dry_run` is false."""

    grace_period_days: int = Field(
        default=0, ge=0, le=36_500,
        description="Days after the purge date before a user is purged. Run on 20 Dec with 10: purge dates up to 9 Dec.",
    )
    record_types: list[RecordType] = Field(
        default_factory=list, description="Only users of these record types. Empty: every record type.",
    )
    user_groups: list[str] = Field(
        default_factory=list,
        description="Only users in these user groups (codes from the user-group code table). Empty: every group.",
    )
    max_owed: Decimal = Field(
        default=Decimal("0"), ge=0, max_digits=12, decimal_places=2,
        description="Users whose active fees add up to more than this amount are kept (OWES_ABOVE_THRESHOLD); "
                    "a user owing exactly this amount is purged and the fees are waived.",
    )
    max_users: int | None = Field(
        default=None, ge=0,
        description="Blast-radius guard: a run that would purge more users than this stops before changing "
                    "anything and says why. Empty: no limit.",
    )
    max_share: float | None = Field(
        default=None, gt=0, le=1,
        description="Blast-radius guard: a run that would purge more than this share of all (not yet purged) "
                    "users stops before changing anything and says why (0.05 = 5%). Empty: no limit.",
    )

    @field_validator("user_groups")
    @classmethod
    def _no_blank_codes(cls, codes: list[str]) -> list[str]:
        if any(not c.strip() for c in codes):
            raise ValueError("codes may not be empty")
        return codes


def select_candidates(conn, parameters: PurgeParameters, run: JobRun, keys=None):
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


def purge_batch(conn, users: pd.DataFrame, parameters: PurgeParameters, run: JobRun) -> dict[str, Any]:
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


def lock_batch(conn, users: pd.DataFrame) -> None:
    """The policy first (a stricter policy set meanwhile waits for this batch, then reaches its users
    too), then the users, in the same order as `policy set` takes them: no deadlock between the two.
    Proxy rows, which a batch running beside this one may share, are locked last (policy/delete_proxies)."""
    lock_policy_shared(conn)
    lock_users(conn, users["user_id"])


PURGE = BatchJob(
    name=JOB,
    key="user_id",
    label="primary_id",
    select=select_candidates,
    decide=decide,
    count=count,
    apply=purge_batch,
    lock=lock_batch,
    fingerprint=("owed_minor", "active_fees", "all_fees", "active_loans", "active_requests", "protected"),
    selection_counts=("eligible",),
    sample_columns=("user_group", "record_type", "purge_date"),
)


def validate(conn, parameters: PurgeParameters) -> None:
    require_codes(conn, "user-group", parameters.user_groups, "user group")


def blast_radius_guard(run: JobRun, preview: Preview, parameters: PurgeParameters) -> None:
    """Refuse a run that would purge more users than the limits allow, before anything changes."""
    would_purge = preview.eligible_units
    if parameters.max_users is not None and would_purge > parameters.max_users:
        raise JobRefused(f"this run would purge {would_purge:,} users, more than max_users={parameters.max_users:,}; "
                         "nothing was changed. Check the parameters, or raise the limit if this is intended.")
    if parameters.max_share is None or would_purge == 0:
        return
    with read_connection(get_engine(run.database_url)) as conn:
        live = conn.execute(sql_for(conn, "common/count_live_users")).scalar() or 0
    # Divide rather than multiply: 29 of 100 users is exactly max_share=0.29, not above it.
    if would_purge / live > parameters.max_share:
        raise JobRefused(f"this run would purge {would_purge:,} of {live:,} users ({would_purge / live:.1%}), "
                         f"more than max_share={parameters.max_share:g}; nothing was changed. "
                         "Check the parameters, or raise the limit if this is intended.")


@flow(name=JOB, flow_run_name=flow_run_namer("purge"), log_prints=True, validate_parameters=True)
def purge_user_records(parameters: PurgeParameters = PurgeParameters()) -> dict[str, Any]:
    """Purge User Records (dry run unless parameters.dry_run is false)."""
    return run_job(PURGE, parameters, title="Purge User Records", unit_name="users",
                   validate=validate, guards=[blast_radius_guard])


def purge_parameters_from_cli(args) -> PurgeParameters:
    unknown = [t for t in args.record_type if t not in RECORD_TYPES]
    if unknown:
        raise InvalidInput(f"unknown record type {', '.join(repr(t) for t in unknown)}; "
                           f"valid record-type codes: {', '.join(sorted(RECORD_TYPES))}")
    values: dict[str, Any] = {
        "dry_run": not args.confirm,
        "record_types": args.record_type,
        "user_groups": args.user_group,
        "require_approval": args.require_approval,
    }
    optional = {"grace_period_days": args.grace_period_days, "max_owed": args.max_owed, "as_of": args.as_of,
                "batch_size": args.batch_size, "max_users": args.max_users, "max_share": args.max_share}
    values.update({k: v for k, v in optional.items() if v is not None})
    try:
        return PurgeParameters(**values)
    except ValidationError as exc:
        raise InvalidInput(validation_message(exc, CLI_FLAGS)) from None


CLI_FLAGS = {
    "grace_period_days": "--grace-period-days", "record_types": "--record-type", "user_groups": "--user-group",
    "max_owed": "--max-owed", "as_of": "--as-of", "batch_size": "--batch-size", "max_users": "--max-users",
    "max_share": "--max-share",
}
