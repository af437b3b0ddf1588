"""Anonymise loan history: unlink old returned loans, requests in history and closed fees from their
users, keeping what statistics need (the user's group, record type, account type and statistical
categories as they stood, the row's own dates, library, item and amounts).

The job's rules, SQL glue and parameters live in tasks/anonymize/; this module wires them.
"""
from __future__ import annotations

from typing import Any

from prefect import flow
from pydantic import ValidationError

from tasks.anonymize.apply import FINGERPRINT, JOB, anonymize_batch, count, decide, lock_batch, select_candidates, validate
from tasks.anonymize.parameters import AnonymizeParameters
from tasks.engine.definition import BatchJob
from tasks.engine.params import parse_int, validation_message
from tasks.engine.records import flow_run_namer
from tasks.engine.runner import run_job
from tasks.errors import InvalidInput

ANONYMIZE = BatchJob(
    name=JOB,
    key="user_id",
    label="primary_id",
    select=select_candidates,
    decide=decide,
    count=count,
    apply=anonymize_batch,
    lock=lock_batch,
    fingerprint=FINGERPRINT,
)


@flow(name=JOB, flow_run_name=flow_run_namer("anonymize"), log_prints=True, validate_parameters=True)
def anonymize_loan_history(parameters: AnonymizeParameters) -> dict[str, Any]:
    """Anonymise loan history (dry run unless parameters.dry_run is false)."""
    return run_job(ANONYMIZE, parameters, title="Anonymise loan history", unit_name="users", validate=validate)


CLI_FLAGS = {
    "loan_days": "--loan-days", "request_days": "--request-days", "fee_days": "--fee-days",
    "libraries": "--library", "user_groups": "--user-group", "keep_last": "--keep-last", "as_of": "--as-of",
    "batch_size": "--batch-size",
}


def anonymize_parameters_from_cli(args) -> AnonymizeParameters:
    days = {"loan_days": ("--loan-days", args.loan_days), "request_days": ("--request-days", args.request_days),
            "fee_days": ("--fee-days", args.fee_days)}
    values: dict[str, Any] = {k: parse_int(flag, v, minimum=0) for k, (flag, v) in days.items() if v is not None}
    if not values:
        raise InvalidInput("give at least one of --loan-days, --request-days, --fee-days")
    values.update({"dry_run": not args.confirm, "libraries": args.library, "user_groups": args.user_group,
                   "require_approval": args.require_approval})
    optional = {"keep_last": args.keep_last, "as_of": args.as_of, "batch_size": args.batch_size}
    values.update({k: v for k, v in optional.items() if v is not None})
    try:
        return AnonymizeParameters(**values)
    except ValidationError as exc:
        raise InvalidInput(validation_message(exc, CLI_FLAGS)) from None
