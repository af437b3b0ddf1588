"""Purge User Records: which candidates are purged, and why the others are not. Pure pandas."""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from tasks.reasons import (  # noqa: F401 - the rules' vocabulary
    ELIGIBLE, PROTECTED, ACTIVE_LOANS, ACTIVE_REQUESTS, OWES_ABOVE_THRESHOLD, HAS_CREDIT,
)

# HAS_CREDIT: the user holds an active CREDIT fee, money the library owes them. Purging would waive or
# delete it, so the user is kept until the credit is refunded or closed (docs/alma-format.md, "Credits").


def purge_cutoff(as_of: dt.date, grace_period_days: int) -> dt.date:
    """Purge dates strictly before this day are due: on 20 Dec with 10 days grace, up to 9 Dec."""
    return as_of - dt.timedelta(days=grace_period_days)


def decide_purge(candidates: pd.DataFrame, *, cutoff: dt.date, record_types: Sequence[str] = (),
                 user_groups: Sequence[str] = (), max_owed_minor: int = 0) -> pd.DataFrame:
    """The candidates in scope (purge date due, record type and group within the limits), each with
    an outcome: ELIGIBLE, or the first reason that keeps the user (protected, loans, requests, owed,
    credit). `owed_minor` is net of credits (Alma's total_sum): it is what the user owes after what the
    library owes them; a user holding an active credit is never purged (HAS_CREDIT)."""
    frame = candidates
    purge_date = pd.to_datetime(frame["purge_date"], errors="coerce")
    in_scope = purge_date.notna() & (purge_date < pd.Timestamp(cutoff))
    if record_types:
        in_scope &= frame["record_type"].isin(list(record_types))
    if user_groups:
        in_scope &= frame["user_group"].isin(list(user_groups))
    frame = frame[in_scope.to_numpy()].copy()
    protected = frame["protected"].astype(bool)
    loans = frame["active_loans"].astype("int64") > 0
    requests = frame["active_requests"].astype("int64") > 0
    owes = frame["owed_minor"].astype("int64") > int(max_owed_minor)
    credits = (frame["active_credits"].astype("int64") > 0 if "active_credits" in frame
               else pd.Series(False, index=frame.index))
    frame["outcome"] = np.select(
        [protected, loans, requests, owes, credits],
        [PROTECTED, ACTIVE_LOANS, ACTIVE_REQUESTS, OWES_ABOVE_THRESHOLD, HAS_CREDIT],
        default=ELIGIBLE,
    ).astype(object)
    return frame
