"""Anonymise loan history: which loans, requests and fees are unlinked from their users. Pure pandas.

A candidate row is one returned loan, request in history or closed fee still linked to a user, with
`ended` (the loan's return date, the request's date, the fee's last transaction) and the facts the
limits judge. A row is in scope when it ended more than N days (of its kind) before the run date, its
library and its user's group are within the limits, and it is not one of the user's `keep_last` most
recently returned loans. Every in-scope row of a protected user gets the outcome PROTECTED; all others
are ELIGIBLE. Rows out of scope are dropped (not counted as skipped).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from tasks.reasons import ELIGIBLE, PROTECTED

# What a candidate row is (the `kind` column; sql/anonymize/select_candidates.sql)
LOAN, REQUEST, FEE = 1, 2, 3
KIND_NAMES = {LOAN: "loans", REQUEST: "requests", FEE: "fees"}

# Columns a decided frame keeps: the engine's key and label, what the batch re-check compares (the row,
# and `facts`: one hash of its end and due times and, for keep-last, how many newer loans it has), the
# outcome. A million-user library decides to ~3 million rows, so each column costs ~25 MB.
DECIDED_COLUMNS = ["user_id", "primary_id", "kind", "row_id", "facts", "outcome"]


def cutoff(as_of: dt.date, days: int | None) -> dt.date | None:
    """Rows that ended strictly before this day are more than `days` days old on `as_of`
    (run on 20 Dec with 30: returned up to 19 Nov, any time of day). None: that kind is not asked for."""
    return None if days is None else as_of - dt.timedelta(days=days)


def _seconds(values: pd.Series) -> pd.Series:
    # SQLite hands times back as text, PostgreSQL as datetimes; both become whole seconds (NaN if none).
    stamps = pd.to_datetime(values, errors="coerce", format="ISO8601")
    seconds = stamps.astype("datetime64[s]").astype("int64").astype("float64")
    return seconds.where(stamps.notna())


def decide_anonymize(candidates: pd.DataFrame, *, as_of: dt.date, loan_days: int | None = None,
                     request_days: int | None = None, fee_days: int | None = None,
                     libraries: Sequence[str] = (), user_groups: Sequence[str] = (),
                     keep_last: int = 0) -> pd.DataFrame:
    """The candidate rows in scope, each with its user's outcome: ELIGIBLE (the row is unlinked) or
    PROTECTED (the user's rows are all left alone)."""
    frame = candidates
    ended_s = _seconds(frame["ended"])
    kind = frame["kind"].astype("int64")
    limit = pd.Series(np.nan, index=frame.index)
    for k, days in ((LOAN, loan_days), (REQUEST, request_days), (FEE, fee_days)):
        day = cutoff(as_of, days)
        if day is not None:
            limit = limit.mask(kind == k, float(pd.Timestamp(day).value // 10**9))
    in_scope = (ended_s < limit).fillna(False)
    if libraries:
        in_scope &= frame["library"].isin(list(libraries))
    if user_groups:
        in_scope &= frame["user_group"].isin(list(user_groups))
    if keep_last:
        kept = (kind == LOAN) & (frame["newer_loans"].fillna(0).astype("int64") < int(keep_last))
        in_scope &= ~kept
    mask = in_scope.to_numpy(dtype=bool)
    decided = frame.loc[mask, ["user_id", "primary_id", "row_id"]].copy()
    decided["kind"] = kind[mask].astype("int8")
    facts = pd.DataFrame({
        "ended_s": ended_s[mask],
        "due_s": _seconds(frame.loc[mask, "due"]) if mask.any() else pd.Series(dtype="float64"),
        "newer_loans": frame.loc[mask, "newer_loans"].fillna(0).astype("float64"),
    }, index=decided.index)
    # Times as whole seconds, so text (SQLite) and datetimes (PostgreSQL) hash alike; the top 53 bits of
    # the hash survive the engine's float64 fingerprint, plenty to notice a change.
    decided["facts"] = (pd.util.hash_pandas_object(facts, index=False).to_numpy() >> np.uint64(11)).astype("int64")
    protected = frame.loc[mask, "protected"].fillna(False).astype(bool).to_numpy()
    outcome = np.full(len(decided), ELIGIBLE, dtype=object)   # one shared string, not one per row
    outcome[protected] = PROTECTED
    decided["outcome"] = outcome
    decided["primary_id"] = _shared_strings(decided["primary_id"])
    return decided[DECIDED_COLUMNS]


def _shared_strings(values: pd.Series) -> pd.Series:
    """The same values, equal strings sharing one object: the database driver makes a new string per
    row, and a library's decided rows repeat each user's primary id and group several times."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    shared = np.asarray(uniques, dtype=object).take(np.where(codes < 0, 0, codes)) if len(uniques) else \
        np.full(len(values), None, dtype=object)
    shared = np.where(codes < 0, None, shared)
    return pd.Series(shared, index=values.index, dtype=object)


def anonymized_counts(rows: pd.DataFrame) -> dict[str, int]:
    """What unlinking these rows does: the preview's promise and a batch's result alike."""
    kinds = rows["kind"].astype("int64")
    return {
        "loans_anonymized": int((kinds == LOAN).sum()),
        "requests_anonymized": int((kinds == REQUEST).sum()),
        "fees_anonymized": int((kinds == FEE).sum()),
        "users_affected": int(rows["user_id"].nunique()),
    }


def rows_by_kind(rows: pd.DataFrame) -> dict[int, list[int]]:
    """Row ids per kind, as plain ints (numpy integers would bind as blobs on SQLite)."""
    kinds = rows["kind"].astype("int64").to_numpy()
    ids = rows["row_id"].astype("int64").to_numpy()
    return {k: ids[kinds == k].tolist() for k in KIND_NAMES}
