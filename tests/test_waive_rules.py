"""The Bulk Fine Waiving rules on plain DataFrames: threshold, fine-type and date limits, overdue."""
from __future__ import annotations

import datetime as dt

import pandas as pd

from tasks.reasons import ELIGIBLE
from tasks.waive.rules import (ABOVE_FINE_THRESHOLD, HAS_OVERDUE_LOANS, PROTECTED, decide_waive,
                               has_overdue_loans)

NOW = dt.datetime(2026, 12, 20, 12, 0, 0)
_fee_seq = iter(range(1, 10_000))


def user_fees(user_id: int, fees: list[tuple[int, str]], *, group: str = "UNDERGRAD", protected: bool = False,
              earliest_due=None, created=dt.datetime(2026, 12, 1, 9, 0)) -> list[dict]:
    """The selection rows of one user: one per active fee, each carrying the user's total."""
    owed = sum(minor for minor, _ in fees)
    return [{"user_id": user_id, "primary_id": f"u{user_id}", "user_group": group, "protected": protected,
             "fee_pk": next(_fee_seq), "fee_type": fee_type, "balance_minor": minor, "creation_time": created,
             "owed_minor": owed, "active_fees": len(fees), "earliest_due": earliest_due}
            for minor, fee_type in fees]


def decide(rows: list[dict], **limits) -> pd.DataFrame:
    limits.setdefault("now", NOW)
    return decide_waive(pd.DataFrame(rows), **limits)


def outcomes(decided: pd.DataFrame) -> dict[int, str]:
    return dict(zip(decided["user_id"], decided["outcome"]))


def test_threshold_is_per_user_and_all_or_nothing_and_a_total_at_the_threshold_is_waived():
    rows = (user_fees(1, [(1000, "OVERDUEFINE"), (5000, "OVERDUEFINE"), (7000, "OVERDUEFINE")])  # 130 > 120
            + user_fees(2, [(5000, "OVERDUEFINE"), (7000, "OTHER")])                            # exactly 120
            + user_fees(3, [(12001, "OVERDUEFINE")]))                                           # 120.01
    decided = decide(rows, threshold_minor=12000)
    assert (decided[decided["user_id"] == 1]["outcome"] == ABOVE_FINE_THRESHOLD).all()
    assert len(decided[decided["user_id"] == 1]) == 3
    assert list(decided[decided["user_id"] == 2]["outcome"]) == [ELIGIBLE, ELIGIBLE]
    assert outcomes(decided)[3] == ABOVE_FINE_THRESHOLD


def test_fine_type_limit_picks_the_fees_but_the_threshold_counts_every_fee():
    rows = (user_fees(1, [(1000, "OVERDUEFINE"), (5000, "LOSTITEMREPLACEMENTFEE")])   # 60 owed, 10 in scope
            + user_fees(2, [(1000, "OVERDUEFINE"), (2000, "LOSTITEMREPLACEMENTFEE")])  # 30 owed
            + user_fees(3, [(2000, "LOSTITEMREPLACEMENTFEE")]))                       # nothing in scope
    decided = decide(rows, threshold_minor=5500, fine_types=["OVERDUEFINE"])
    assert outcomes(decided) == {1: ABOVE_FINE_THRESHOLD, 2: ELIGIBLE}
    waived = decided[decided["outcome"] == ELIGIBLE]
    assert list(waived["fee_type"]) == ["OVERDUEFINE"]
    assert list(waived["balance_minor"]) == [1000]


def test_creation_date_range_includes_both_whole_end_days_and_excludes_unknown_dates():
    rows = (user_fees(1, [(100, "OTHER")], created=dt.datetime(2026, 11, 1, 0, 0))        # first day, midnight
            + user_fees(2, [(100, "OTHER")], created=dt.datetime(2026, 11, 30, 23, 59, 59))  # last day, late
            + user_fees(3, [(100, "OTHER")], created=dt.datetime(2026, 10, 31, 23, 59, 59))  # day before
            + user_fees(4, [(100, "OTHER")], created=dt.datetime(2026, 12, 1, 0, 0))        # day after
            + user_fees(5, [(100, "OTHER")], created=None))
    decided = decide(rows, threshold_minor=10_000, created_from=dt.date(2026, 11, 1), created_to=dt.date(2026, 11, 30))
    assert outcomes(decided) == {1: ELIGIBLE, 2: ELIGIBLE}
    # SQLite returns times as text: the same rules hold.
    text_rows = [{**r, "creation_time": str(r["creation_time"]) if r["creation_time"] else None} for r in rows]
    decided = decide(text_rows, threshold_minor=10_000, created_from=dt.date(2026, 11, 1),
                     created_to=dt.date(2026, 11, 30))
    assert outcomes(decided) == {1: ELIGIBLE, 2: ELIGIBLE}


def test_overdue_means_due_before_the_run_time_and_counts_only_with_exclude_overdue():
    second = dt.timedelta(seconds=1)
    rows = (user_fees(1, [(100, "OTHER")], earliest_due=NOW)             # due exactly now: not overdue
            + user_fees(2, [(100, "OTHER")], earliest_due=NOW - second)  # a second ago: overdue
            + user_fees(3, [(100, "OTHER")], earliest_due=None)          # no active loans
            + user_fees(4, [(100, "OTHER")], earliest_due=f"{NOW - second:%Y-%m-%d %H:%M:%S}.000000"))  # SQLite text
    assert outcomes(decide(rows, threshold_minor=100, exclude_overdue=True)) == {
        1: ELIGIBLE, 2: HAS_OVERDUE_LOANS, 3: ELIGIBLE, 4: HAS_OVERDUE_LOANS}
    assert set(outcomes(decide(rows, threshold_minor=100)).values()) == {ELIGIBLE}
    assert list(has_overdue_loans(pd.Series([NOW, NOW - second, None]), NOW)) == [False, True, False]


def test_user_group_limit_protected_users_and_the_order_of_reasons():
    rows = (user_fees(1, [(100, "OTHER")], group="GRAD")
            + user_fees(2, [(100, "OTHER")], protected=True, earliest_due=NOW - dt.timedelta(days=1))
            + user_fees(3, [(9999, "OTHER")], earliest_due=NOW - dt.timedelta(days=1))
            + user_fees(4, [(100, "OTHER")], earliest_due=NOW - dt.timedelta(days=1))
            + user_fees(5, [(100, "OTHER")]))
    decided = decide(rows, threshold_minor=500, user_groups=["UNDERGRAD"], exclude_overdue=True)
    # Protected first, then the threshold, then overdue loans; user 1 is outside the group limit.
    assert outcomes(decided) == {2: PROTECTED, 3: ABOVE_FINE_THRESHOLD, 4: HAS_OVERDUE_LOANS, 5: ELIGIBLE}


def test_an_empty_selection_decides_to_nothing():
    decided = decide_waive(pd.DataFrame(columns=list(user_fees(1, [(1, "OTHER")])[0])), threshold_minor=1, now=NOW)
    assert decided.empty and "outcome" in decided.columns
