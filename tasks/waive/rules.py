"""Bulk Fine Waiving: which fees are waived, and why the other users in scope get nothing. Pure pandas."""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from tasks.reasons import (  # noqa: F401 - the rules' vocabulary
    ELIGIBLE, PROTECTED, ABOVE_FINE_THRESHOLD, HAS_OVERDUE_LOANS,
)



def _timestamps(values: pd.Series) -> pd.Series:
    # SQLite hands times back as text, PostgreSQL as datetimes; both become Timestamps (NaT if none).
    return pd.to_datetime(values, errors="coerce", format="ISO8601")


def fees_in_scope(fees: pd.DataFrame, *, fine_types: Sequence[str] = (), user_groups: Sequence[str] = (),
                  created_from: dt.date | None = None, created_to: dt.date | None = None) -> pd.Series:
    """Which fee rows the limits select: fee type and user group where given, and the creation date
    within [created_from, created_to] (whole days). With a date limit, a fee of unknown creation
    time is out of scope: nobody can say it falls inside the range."""
    mask = pd.Series(True, index=fees.index)
    if fine_types:
        mask &= fees["fee_type"].isin(list(fine_types))
    if user_groups:
        mask &= fees["user_group"].isin(list(user_groups))
    if created_from is not None or created_to is not None:
        created = _timestamps(fees["creation_time"])
        if created_from is not None:
            mask &= created >= pd.Timestamp(created_from)
        if created_to is not None:
            mask &= created < pd.Timestamp(created_to + dt.timedelta(days=1))
    return mask.fillna(False).astype(bool)


def has_overdue_loans(earliest_due: pd.Series, now: dt.datetime) -> pd.Series:
    """An active loan is overdue when it was due before the run time; due exactly now is not yet."""
    return (_timestamps(earliest_due) < pd.Timestamp(now)).fillna(False).astype(bool)


def decide_waive(candidates: pd.DataFrame, *, threshold_minor: int, now: dt.datetime,
                 fine_types: Sequence[str] = (), user_groups: Sequence[str] = (),
                 created_from: dt.date | None = None, created_to: dt.date | None = None,
                 exclude_overdue: bool = False) -> pd.DataFrame:
    """The fees in scope, each with its user's outcome: ELIGIBLE (the fee is waived) or the first
    reason that keeps the user's fees (protected, above the threshold, overdue loans).

    The threshold is per user and all-or-nothing: it is judged on `owed_minor`, the user's total over
    all active fees of every type, so a user owing 10 + 50 + 70 with a threshold of 120 keeps all
    three, even when a fine-type limit would waive only one of them. A total exactly at the threshold
    is waived. Users none of whose fees are in scope do not appear at all.

    Credits: `owed_minor` is net of the user's active CREDIT fees (negative balances, as Alma's total_sum
    counts them), so a credit lowers what the user owes against the threshold. A credit itself is never
    waived: the candidates are fees with a balance above 0 (sql/waive/select_candidates.sql)."""
    in_scope = fees_in_scope(candidates, fine_types=fine_types, user_groups=user_groups,
                             created_from=created_from, created_to=created_to)
    frame = candidates[in_scope.to_numpy()].copy()
    protected = frame["protected"].astype(bool)
    above = frame["owed_minor"].astype("int64") > int(threshold_minor)
    overdue = (has_overdue_loans(frame["earliest_due"], now) if exclude_overdue
               else pd.Series(False, index=frame.index))
    frame["outcome"] = np.select(
        [protected, above, overdue],
        [PROTECTED, ABOVE_FINE_THRESHOLD, HAS_OVERDUE_LOANS],
        default=ELIGIBLE,
    ).astype(object)
    return frame
