"""The pandas rules decide exactly what a plain, user-by-user reading of the contract decides, for any
library hypothesis can think of — including values as each database hands them back (SQLite: dates
and times as text, booleans as 0/1; PostgreSQL: date, datetime and bool objects)."""
from __future__ import annotations

import datetime as dt

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.reasons import ELIGIBLE
from tasks.purge.rules import decide_purge, purge_cutoff
from tasks.waive.rules import decide_waive

GROUPS = ["UNDERGRAD", "GRAD", "STAFF"]
RECORD_TYPES = ["PUBLIC", "STAFF", "CONTACT"]
FEE_TYPES = ["OVERDUEFINE", "CARDRENEWAL", "DAMAGEDITEMFINE"]
DAY0 = dt.date(2026, 12, 1)

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def as_stored(value, text: bool):
    """A date/datetime/bool the way one of the two databases returns it."""
    if value is None or not text:
        return value
    if isinstance(value, bool):
        return int(value)
    return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()


days = st.integers(min_value=-40, max_value=40)
money = st.integers(min_value=0, max_value=5_000)  # minor units

# ------------------------------------------------------------------ purge

purge_users = st.lists(st.fixed_dictionaries({
    "purge_date": st.none() | days.map(lambda d: DAY0 + dt.timedelta(days=d)),
    "record_type": st.sampled_from(RECORD_TYPES),
    "user_group": st.sampled_from(GROUPS),
    "protected": st.booleans(),
    "active_loans": st.integers(0, 2),
    "active_requests": st.integers(0, 2),
    "owed_minor": money,
}), max_size=30)


def contract_purge(user: dict, *, as_of: dt.date, grace: int, record_types, user_groups, max_owed: int) -> str | None:
    """CONTRACT.md, purge: None when out of scope, else ELIGIBLE or the first reason that keeps the user."""
    if user["purge_date"] is None or not user["purge_date"] < as_of - dt.timedelta(days=grace):
        return None
    if record_types and user["record_type"] not in record_types:
        return None
    if user_groups and user["user_group"] not in user_groups:
        return None
    if user["protected"]:
        return "PROTECTED"
    if user["active_loans"]:
        return "ACTIVE_LOANS"
    if user["active_requests"]:
        return "ACTIVE_REQUESTS"
    if user["owed_minor"] > max_owed:
        return "OWES_ABOVE_THRESHOLD"
    return ELIGIBLE


@PROPERTY_SETTINGS
@given(users=purge_users, as_of_offset=days, grace=st.integers(0, 30),
       record_types=st.lists(st.sampled_from(RECORD_TYPES), unique=True, max_size=2),
       user_groups=st.lists(st.sampled_from(GROUPS), unique=True, max_size=2),
       data=st.data(), text=st.booleans())
def test_purge_rules_decide_as_the_contract_reads(users, as_of_offset, grace, record_types, user_groups, data,
                                                  text):
    owed = [u["owed_minor"] for u in users]
    max_owed = data.draw((st.sampled_from(owed) if owed else st.nothing()) | money)
    as_of = DAY0 + dt.timedelta(days=as_of_offset)
    frame = pd.DataFrame.from_records(
        [{"user_id": i, "primary_id": f"p{i}", **u, "purge_date": as_stored(u["purge_date"], text),
          "protected": as_stored(u["protected"], text), "active_fees": 0, "all_fees": 0}
         for i, u in enumerate(users)],
        columns=["user_id", "primary_id", "purge_date", "record_type", "user_group", "protected",
                 "active_loans", "active_requests", "owed_minor", "active_fees", "all_fees"])
    decided = decide_purge(frame, cutoff=purge_cutoff(as_of, grace), record_types=record_types,
                           user_groups=user_groups, max_owed_minor=max_owed)

    got = dict(zip(decided["user_id"], decided["outcome"]))
    expected = {i: outcome for i, u in enumerate(users)
                if (outcome := contract_purge(u, as_of=as_of, grace=grace, record_types=record_types,
                                              user_groups=user_groups, max_owed=max_owed)) is not None}
    assert got == expected


def test_purge_boundary_from_the_contract():
    """Run on 20 Dec with 10 days' grace: purge dates up to 9 Dec are purged, 10 Dec is not."""
    frame = pd.DataFrame({"user_id": [1, 2], "purge_date": [dt.date(2026, 12, 9), dt.date(2026, 12, 10)],
                          "record_type": "PUBLIC", "user_group": "GRAD", "protected": False, "active_loans": 0,
                          "active_requests": 0, "owed_minor": 0})
    decided = decide_purge(frame, cutoff=purge_cutoff(dt.date(2026, 12, 20), 10))
    assert list(decided["user_id"]) == [1]


# ------------------------------------------------------------------ waive

NOW = dt.datetime(2026, 12, 20, 13, 30)
fee = st.fixed_dictionaries({
    "fee_type": st.sampled_from(FEE_TYPES),
    "balance_minor": money,
    "created": st.none() | days.map(lambda d: NOW - dt.timedelta(days=d, hours=d % 5)),
})
waive_users = st.lists(st.fixed_dictionaries({
    "user_group": st.sampled_from(GROUPS),
    "protected": st.booleans(),
    "fees": st.lists(fee, max_size=4),
    "loan_due": st.lists(st.integers(-3 * 24, 3 * 24).map(lambda h: NOW + dt.timedelta(hours=h)) | st.just(NOW),
                         max_size=3),
}), max_size=20)


def contract_waive(user: dict, *, threshold: int, fine_types, user_groups, created_from, created_to,
                   exclude_overdue: bool) -> tuple[str, list[int]] | None:
    """CONTRACT.md, waive, read user by user: (outcome, the fees it waives), or None when none of the
    user's fees is in scope. Protected users keep their fees (as for purge and merge)."""
    def in_scope(f: dict) -> bool:
        if fine_types and f["fee_type"] not in fine_types:
            return False
        if user_groups and user["user_group"] not in user_groups:
            return False
        if created_from and (f["created"] is None or f["created"].date() < created_from):
            return False
        if created_to and (f["created"] is None or f["created"].date() > created_to):
            return False
        return True

    open_fees = [(n, f) for n, f in enumerate(user["fees"]) if f["balance_minor"] > 0]
    chosen = [n for n, f in open_fees if in_scope(f)]
    if not chosen:
        return None
    total = sum(f["balance_minor"] for f in user["fees"])  # every active fee, of every type
    if user["protected"]:
        return "PROTECTED", []
    if total > threshold:
        return "ABOVE_FINE_THRESHOLD", []
    if exclude_overdue and any(due < NOW for due in user["loan_due"]):
        return "HAS_OVERDUE_LOANS", []
    return ELIGIBLE, chosen


@PROPERTY_SETTINGS
@given(users=waive_users, data=st.data(),
       fine_types=st.lists(st.sampled_from(FEE_TYPES), unique=True, max_size=2),
       user_groups=st.lists(st.sampled_from(GROUPS), unique=True, max_size=2),
       created_from=st.none() | days.map(lambda d: NOW.date() - dt.timedelta(days=abs(d))),
       created_to=st.none() | days.map(lambda d: NOW.date() - dt.timedelta(days=abs(d) // 2)),
       exclude_overdue=st.booleans(), text=st.booleans())
def test_waive_rules_decide_as_the_contract_reads(users, data, fine_types, user_groups, created_from,
                                                  created_to, exclude_overdue, text):
    # Often exactly some user's total: the boundary ("above the threshold") is where rules go wrong.
    totals = [t for u in users if (t := sum(f["balance_minor"] for f in u["fees"])) > 0]
    threshold = data.draw((st.sampled_from(totals) if totals else st.nothing()) | st.integers(1, 8_000))
    rows = []
    for u_id, u in enumerate(users):
        owed = sum(f["balance_minor"] for f in u["fees"])
        earliest = min(u["loan_due"]) if u["loan_due"] else None
        for n, f in enumerate(u["fees"]):
            if f["balance_minor"] > 0:  # the selection's rows: active fees with a balance
                rows.append({"user_id": u_id, "primary_id": f"p{u_id}", "user_group": u["user_group"],
                             "protected": as_stored(u["protected"], text), "fee_pk": u_id * 100 + n,
                             "fee_type": f["fee_type"], "balance_minor": f["balance_minor"],
                             "creation_time": as_stored(f["created"], text), "owed_minor": owed,
                             "active_fees": len(u["fees"]), "earliest_due": as_stored(earliest, text)})
    frame = pd.DataFrame.from_records(rows, columns=[
        "user_id", "primary_id", "user_group", "protected", "fee_pk", "fee_type", "balance_minor",
        "creation_time", "owed_minor", "active_fees", "earliest_due"])
    decided = decide_waive(frame, threshold_minor=threshold, now=NOW, fine_types=fine_types,
                           user_groups=user_groups, created_from=created_from, created_to=created_to,
                           exclude_overdue=exclude_overdue)

    got_outcomes = {int(u): set(g["outcome"]) for u, g in decided.groupby("user_id")}
    got_waived = sorted(int(f) for f in decided.loc[decided["outcome"] == ELIGIBLE, "fee_pk"])
    expected_outcomes, expected_waived = {}, []
    for u_id, u in enumerate(users):
        verdict = contract_waive(u, threshold=threshold, fine_types=fine_types, user_groups=user_groups,
                                 created_from=created_from, created_to=created_to, exclude_overdue=exclude_overdue)
        if verdict is not None:
            expected_outcomes[u_id] = {verdict[0]}
            expected_waived += [u_id * 100 + n for n in verdict[1]]
    assert got_outcomes == expected_outcomes  # one outcome per user: all of its fees or none
    assert got_waived == sorted(expected_waived)
