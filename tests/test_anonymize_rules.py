"""Anonymise loan history: the pure rules (tasks/anonymize/rules.py), on frames shaped like the selection
returns them from SQLite (times as text) and PostgreSQL (datetimes)."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from tasks.anonymize.rules import FEE, LOAN, REQUEST, anonymized_counts, cutoff, decide_anonymize, rows_by_kind
from tasks.reasons import ELIGIBLE, PROTECTED

AS_OF = dt.date(2026, 12, 20)


def candidates(rows: list[dict], as_text: bool) -> pd.DataFrame:
    base = {"user_id": 1, "primary_id": "u1", "user_group": "UNDERGRAD", "protected": False, "kind": LOAN,
            "due": None, "library": "MAIN", "newer_loans": None}
    frame = pd.DataFrame([{**base, "row_id": i + 1, **r} for i, r in enumerate(rows)])
    if as_text:
        for column in ("ended", "due"):
            frame[column] = frame[column].map(lambda v: None if v is None else str(v))
    return frame


@pytest.fixture(params=["text", "datetime"])
def as_text(request) -> bool:
    return request.param == "text"


def test_cutoff_is_more_than_n_days_before_the_run_date():
    assert cutoff(AS_OF, 30) == dt.date(2026, 11, 20)
    assert cutoff(AS_OF, 0) == AS_OF
    assert cutoff(AS_OF, None) is None


def test_a_row_is_in_scope_when_it_ended_before_its_kinds_cutoff(as_text):
    frame = candidates([
        {"kind": LOAN, "ended": dt.datetime(2026, 11, 19, 23, 59, 59)},   # 31 days: in
        {"kind": LOAN, "ended": dt.datetime(2026, 11, 20, 0, 0, 0)},      # exactly 30 days: out
        {"kind": REQUEST, "ended": dt.datetime(2026, 12, 9)},             # 11 days, request-days 10: in
        {"kind": REQUEST, "ended": dt.datetime(2026, 12, 10)},            # 10 days: out
        {"kind": FEE, "ended": dt.datetime(2025, 1, 1)},                  # fees not asked for: out
        {"kind": LOAN, "ended": None},                                    # no return date: out
    ], as_text)
    decided = decide_anonymize(frame, as_of=AS_OF, loan_days=30, request_days=10)
    assert decided["row_id"].tolist() == [1, 3]
    assert (decided["outcome"] == ELIGIBLE).all()


def test_library_group_and_keep_last_narrow_the_scope(as_text):
    old = dt.datetime(2025, 6, 1)
    frame = candidates([
        {"kind": LOAN, "ended": old, "library": "MAIN", "newer_loans": 0},   # the most recent: kept by K=2
        {"kind": LOAN, "ended": old, "library": "MAIN", "newer_loans": 1},   # second most recent: kept
        {"kind": LOAN, "ended": old, "library": "MAIN", "newer_loans": 2},   # third: in
        {"kind": LOAN, "ended": old, "library": "LAW", "newer_loans": 3},    # other library: out
        {"kind": REQUEST, "ended": old, "library": "MAIN"},                  # keep-last is about loans only
        {"kind": FEE, "ended": old, "library": "MAIN", "user_group": "STAFF"},  # other group: out
    ], as_text)
    decided = decide_anonymize(frame, as_of=AS_OF, loan_days=0, request_days=0, fee_days=0, libraries=["MAIN"],
                               user_groups=["UNDERGRAD"], keep_last=2)
    assert decided["row_id"].tolist() == [3, 5]


def test_rows_of_protected_users_are_protected_and_counts_are_per_kind(as_text):
    old = dt.datetime(2025, 6, 1)
    frame = candidates([
        {"user_id": 1, "kind": LOAN, "ended": old},
        {"user_id": 1, "kind": FEE, "ended": old},
        {"user_id": 2, "kind": LOAN, "ended": old, "protected": True},
        {"user_id": 3, "kind": REQUEST, "ended": old},
        {"user_id": 3, "kind": REQUEST, "ended": old},
    ], as_text)
    decided = decide_anonymize(frame, as_of=AS_OF, loan_days=1, request_days=1, fee_days=1)
    assert decided.set_index("row_id")["outcome"].to_dict() == {1: ELIGIBLE, 2: ELIGIBLE, 3: PROTECTED,
                                                                4: ELIGIBLE, 5: ELIGIBLE}
    eligible = decided[decided["outcome"] == ELIGIBLE]
    assert anonymized_counts(eligible) == {"loans_anonymized": 1, "requests_anonymized": 2, "fees_anonymized": 1,
                                           "users_affected": 2}
    assert rows_by_kind(eligible) == {LOAN: [1], REQUEST: [4, 5], FEE: [2]}
    # Times are hashed as whole seconds: the same from text and from datetimes (the batch re-check
    # compares them), and different when a loan's dates change.
    assert decided["facts"].nunique() == 1
    moved = frame.assign(ended=frame["ended"].where(frame["row_id"] != 1, "2025-06-02 00:00:00"))
    assert decide_anonymize(moved, as_of=AS_OF, loan_days=1, request_days=1, fee_days=1)["facts"].nunique() == 2


def test_an_empty_selection_decides_to_nothing(as_text):
    frame = candidates([{"ended": dt.datetime(2025, 1, 1)}], as_text).iloc[0:0]
    decided = decide_anonymize(frame, as_of=AS_OF, loan_days=1)
    assert decided.empty and "outcome" in decided.columns
    assert anonymized_counts(decided)["users_affected"] == 0


def test_at_least_one_kind_is_required_and_every_field_is_documented():
    from pydantic import ValidationError

    from tasks.anonymize.parameters import AnonymizeParameters

    with pytest.raises(ValidationError, match="at least one of loan_days, request_days, fee_days"):
        AnonymizeParameters(libraries=["MAIN"])
    assert all(f.description for f in AnonymizeParameters.model_fields.values())
