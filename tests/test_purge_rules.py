"""Purge rules (tasks/purge_rules.py): pure pandas, every rule and its boundary."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from tasks.reasons import ELIGIBLE
from tasks.purge.rules import decide_purge, purge_cutoff

AS_OF = dt.date(2026, 12, 20)


def candidate(user_id: int, *, purge_date: dt.date | str | None = dt.date(2026, 1, 1), record_type: str = "PUBLIC",
              user_group: str = "UNDERGRAD", protected: bool = False, active_loans: int = 0,
              active_requests: int = 0, owed_minor: int = 0) -> dict:
    return {"user_id": user_id, "primary_id": f"u{user_id}", "user_group": user_group, "record_type": record_type,
            "protected": protected, "purge_date": purge_date, "owed_minor": owed_minor,
            "active_fees": int(owed_minor > 0), "all_fees": int(owed_minor > 0),
            "active_loans": active_loans, "active_requests": active_requests}


def decide(rows: list[dict], *, grace: int = 0, **limits) -> dict[int, str]:
    decided = decide_purge(pd.DataFrame(rows), cutoff=purge_cutoff(AS_OF, grace), **limits)
    return dict(zip(decided["user_id"], decided["outcome"]))


def test_contract_example_20_december_with_10_days_grace_purges_purge_dates_up_to_9_december():
    outcomes = decide([candidate(1, purge_date=dt.date(2026, 12, 8)),
                       candidate(2, purge_date=dt.date(2026, 12, 9)),
                       candidate(3, purge_date=dt.date(2026, 12, 10)),
                       candidate(4, purge_date=dt.date(2026, 12, 11))], grace=10)
    assert outcomes == {1: ELIGIBLE, 2: ELIGIBLE}


def test_grace_zero_purges_purge_dates_before_the_run_date_but_not_on_it():
    outcomes = decide([candidate(1, purge_date=dt.date(2026, 12, 19)),
                       candidate(2, purge_date=dt.date(2026, 12, 20)),
                       candidate(3, purge_date=dt.date(2026, 12, 21))], grace=0)
    assert outcomes == {1: ELIGIBLE}


def test_cutoff_counts_calendar_days_across_a_year_boundary():
    assert purge_cutoff(dt.date(2027, 1, 5), 10) == dt.date(2026, 12, 26)
    assert purge_cutoff(AS_OF, 0) == AS_OF


def test_users_without_a_purge_date_are_never_purged():
    outcomes = decide([candidate(1, purge_date=None), candidate(2, purge_date=dt.date(2020, 1, 1))])
    assert outcomes == {2: ELIGIBLE}


def test_purge_dates_as_sqlite_returns_them_text_decide_like_dates():
    outcomes = decide([candidate(1, purge_date="2026-12-19"), candidate(2, purge_date="2026-12-20")])
    assert outcomes == {1: ELIGIBLE}


def test_owed_exactly_at_max_owed_is_purged_and_one_cent_above_is_kept():
    rows = [candidate(1, owed_minor=500), candidate(2, owed_minor=501), candidate(3, owed_minor=0)]
    assert decide(rows, max_owed_minor=500) == {1: ELIGIBLE, 2: "OWES_ABOVE_THRESHOLD", 3: ELIGIBLE}


def test_default_max_owed_zero_keeps_anyone_who_owes_a_cent():
    assert decide([candidate(1, owed_minor=1), candidate(2, owed_minor=0)]) == {1: "OWES_ABOVE_THRESHOLD",
                                                                                 2: ELIGIBLE}


@pytest.mark.parametrize("facts, reason", [
    ({"protected": True}, "PROTECTED"),
    ({"active_loans": 1}, "ACTIVE_LOANS"),
    ({"active_requests": 2}, "ACTIVE_REQUESTS"),
    ({"owed_minor": 100}, "OWES_ABOVE_THRESHOLD"),
])
def test_each_guard_keeps_the_user_with_its_reason(facts, reason):
    assert decide([candidate(1, **facts), candidate(2)]) == {1: reason, 2: ELIGIBLE}


def test_a_user_kept_for_several_reasons_gets_the_first_in_rule_order():
    rows = [candidate(1, protected=True, active_loans=1, active_requests=1, owed_minor=9),
            candidate(2, active_loans=1, active_requests=1, owed_minor=9),
            candidate(3, active_requests=1, owed_minor=9)]
    assert decide(rows) == {1: "PROTECTED", 2: "ACTIVE_LOANS", 3: "ACTIVE_REQUESTS"}


def test_protected_is_never_purged_whatever_else_holds():
    # SQLite hands booleans over as 0/1.
    rows = [candidate(1, protected=1), candidate(2, protected=True, purge_date=dt.date(1990, 1, 1))]
    assert set(decide(rows).values()) == {"PROTECTED"}


def test_record_type_and_user_group_limits_narrow_the_scope():
    rows = [candidate(1, record_type="PUBLIC", user_group="UNDERGRAD"),
            candidate(2, record_type="STAFF", user_group="UNDERGRAD"),
            candidate(3, record_type="PUBLIC", user_group="GRAD"),
            candidate(4, record_type="CONTACT", user_group="ALUMNI", active_loans=1)]
    assert decide(rows, record_types=["PUBLIC"]) == {1: ELIGIBLE, 3: ELIGIBLE}
    assert decide(rows, user_groups=["GRAD", "ALUMNI"]) == {3: ELIGIBLE, 4: "ACTIVE_LOANS"}
    assert decide(rows, record_types=["PUBLIC", "CONTACT"], user_groups=["UNDERGRAD"]) == {1: ELIGIBLE}
    assert decide(rows) == {1: ELIGIBLE, 2: ELIGIBLE, 3: ELIGIBLE, 4: "ACTIVE_LOANS"}


def test_an_empty_selection_decides_to_an_empty_frame_with_an_outcome_column():
    empty = pd.DataFrame(columns=list(candidate(1)))
    decided = decide_purge(empty, cutoff=AS_OF)
    assert decided.empty and "outcome" in decided.columns
