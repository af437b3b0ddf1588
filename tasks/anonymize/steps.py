"""Anonymise loan history in the database: select the candidate rows, lock and unlink a batch (the
library and user-group codes are checked by the engine, as the form offers them). The rules that decide which rows are unlinked are in tasks/anonymize/rules.py.

The units are users: a batch takes all in-scope rows of its users, locks them, re-reads and re-decides
them, and unlinks the rows of the users whose facts did not change since selection, in one transaction.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Connection, select as select_rows

from tasks.anonymize.parameters import AnonymizeParameters
from tasks.anonymize.rules import FEE, KIND_NAMES, LOAN, REQUEST, anonymized_counts, cutoff, decide_anonymize, rows_by_kind
from tasks.db.schema import fees, loans, requests, users
from tasks.db.sql import sql_for
from tasks.db.statements import unlink_from_users
from tasks.db.undo_record import forget_rows
from tasks.engine.definition import JobRun
from tasks.engine.records import utcnow
from tasks.engine.selection import read_chunks, restrict_params

EVENT = "HISTORY_ANONYMIZED"
# Row ids per statement: well under SQLite's bound-variable limit, whatever the batch size.
ROWS_PER_STATEMENT = 10_000
# A user whose rows changed since selection (a loan re-opened, renewed or returned again, the user
# protected or moved out of the groups) is left alone this time: CHANGED_SINCE_SELECTION.
FINGERPRINT = ("kind", "row_id", "facts")
_TABLES = {LOAN: loans, REQUEST: requests, FEE: fees}


def _cutoff_params(parameters: AnonymizeParameters, run: JobRun) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for kind, days in (("loan", parameters.loan_days), ("request", parameters.request_days),
                       ("fee", parameters.fee_days)):
        day = cutoff(run.as_of, days)
        values[f"do_{kind}s"] = int(day is not None)
        values[f"{kind}_cutoff"] = day or run.as_of
    return values


def select(conn: Connection, parameters: AnonymizeParameters, run: JobRun,
           keys: Sequence[Any] | None = None) -> Iterator[pd.DataFrame]:
    return read_chunks(conn, "anonymize/select_candidates",
                       {**_cutoff_params(parameters, run), "keep_last": parameters.keep_last,
                        **restrict_params(keys)})


def decide(candidates: pd.DataFrame, parameters: AnonymizeParameters, run: JobRun) -> pd.DataFrame:
    return decide_anonymize(
        candidates, as_of=run.as_of, loan_days=parameters.loan_days, request_days=parameters.request_days,
        fee_days=parameters.fee_days, libraries=parameters.libraries, user_groups=parameters.user_groups,
        keep_last=parameters.keep_last,
    )


def count(eligible: pd.DataFrame) -> dict[str, Any]:
    return anonymized_counts(eligible)


def _chunks(values: list[int], size: int = ROWS_PER_STATEMENT) -> Iterator[list[int]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def lock(conn: Connection, rows: pd.DataFrame) -> None:
    """The batch's users (new loans, requests and fees for them wait, as their foreign keys take KEY
    SHARE locks) and then the rows it will unlink (a loan re-opened, a request revived or a fee
    re-charged at the desk waits), each in id order: no deadlock between batches. `with_for_update()`
    is FOR UPDATE on PostgreSQL and nothing on SQLite, whose BEGIN IMMEDIATE already holds the
    database's one write lock."""
    user_ids = sorted({int(i) for i in rows["user_id"]})
    conn.execute(select_rows(users.c.id).where(users.c.id.in_(user_ids)).order_by(users.c.id)
                 .with_for_update()).all()
    for kind, ids in rows_by_kind(rows).items():
        table = _TABLES[kind]
        for chunk in _chunks(sorted(ids)):
            conn.execute(select_rows(table.c.id).where(table.c.id.in_(chunk)).order_by(table.c.id)
                         .with_for_update()).all()


def apply(conn: Connection, rows: pd.DataFrame, parameters: AnonymizeParameters, run: JobRun) -> dict[str, Any]:
    """Unlink the rows re-checked under lock; one audit event for the batch, with counts only."""
    for kind, ids in rows_by_kind(rows).items():
        changed = 0
        unlink = unlink_from_users(_TABLES[kind].name)
        for chunk in _chunks(ids):
            if kind == FEE:
                # Before the fee rows lose their user: these statements need only the fee ids.
                conn.execute(sql_for(conn, "anonymize/clear_fee_transaction_comments"), {"fee_ids": chunk})
                conn.execute(sql_for(conn, "anonymize/unlink_fee_events"), {"fee_ids": chunk})
            changed += conn.execute(unlink, {"ids": chunk, "now": run.now}).rowcount
        if changed != len(ids):
            # Every row was re-read under the batch's lock; anything else is a bug, and the batch rolls back.
            raise RuntimeError(f"unlinked {changed} of the batch's {len(ids)} {KIND_NAMES[kind]}")
    # With the link, in the same transaction: the undo records naming these rows as moved by a merge.
    forget_rows(conn, sorted({int(u) for u in rows["user_id"]}),
                {KIND_NAMES[kind]: ids for kind, ids in rows_by_kind(rows).items()})
    counts = anonymized_counts(rows)
    details = {"loans": counts["loans_anonymized"], "requests": counts["requests_anonymized"],
               "fees": counts["fees_anonymized"], "users": counts["users_affected"]}
    conn.execute(sql_for(conn, "anonymize/insert_batch_event"),
                 {"run_id": run.run_id, "details": json.dumps(details, sort_keys=True), "created_at": utcnow()})
    return counts
