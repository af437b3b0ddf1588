"""Merge Users rules: validation reasons, segment types and clash-aware counts, on plain DataFrames."""
from __future__ import annotations

import pandas as pd
import pytest

from tasks.reasons import ELIGIBLE
from tasks.merge.rules import (COPY_AS_INTERNAL_REQUIRED, FROM_NOT_PATRON_ONLY, KINDS, PROTECTED, SAME_USER,
                               SEGMENTS, USER_IN_SEVERAL_PAIRS, USER_NOT_FOUND, decide_merge, moved_totals,
                               pair_facts, pair_table)

COUNTED = ["loans", "requests", "fees", "fee_transactions", "addresses", "emails", "phones", "notes", "blocks",
           "statistics", "attachments"]


def user(user_id, primary_id, *, protected=False, account_type="EXTERNAL", non_patron_roles=0, **counts):
    row = {"user_id": user_id, "primary_id": primary_id, "protected": protected, "account_type": account_type,
           "non_patron_roles": non_patron_roles}
    row.update({k: counts.get(k, 0) for k in COUNTED})
    return row


def facts(pairs, users, items=(), segments=SEGMENTS, copy_as_internal=None):
    table = pair_table(pairs, copy_as_internal)
    frame = pair_facts(table, pd.DataFrame(users), pd.DataFrame(list(items), columns=["user_id", "kind", "a", "b"]),
                       segments)
    return decide_merge(frame, table).set_index("pair")


def test_each_validation_failure_has_its_reason_and_the_rest_are_eligible():
    users = [
        user(1, "ok-from"), user(2, "ok-to"),
        user(3, "staff", non_patron_roles=1), user(4, "t-staff"),
        user(5, "prot-from", protected=True), user(6, "t-prot"),
        user(7, "f-prot"), user(8, "prot-to", protected=True),
        user(9, "int", account_type="INTERNAL"), user(10, "ext"),
        user(11, "c1"), user(12, "c2"), user(13, "c3"),
        user(14, "same"),
    ]
    pairs = [("ok-from", "ok-to", None), ("ghost", "ok-to2", None), ("staff", "t-staff", None),
             ("prot-from", "t-prot", None), ("f-prot", "prot-to", None), ("int", "ext", None),
             ("c1", "c2", None), ("c2", "c3", None), ("same", "same", None)]
    users.append(user(15, "ok-to2"))
    outcome = facts(pairs, users)["outcome"].to_dict()
    assert outcome == {
        "ok-from -> ok-to": ELIGIBLE,
        "ghost -> ok-to2": USER_NOT_FOUND,
        "staff -> t-staff": FROM_NOT_PATRON_ONLY,
        "prot-from -> t-prot": PROTECTED,
        "f-prot -> prot-to": PROTECTED,
        "int -> ext": COPY_AS_INTERNAL_REQUIRED,
        "c1 -> c2": USER_IN_SEVERAL_PAIRS,
        "c2 -> c3": USER_IN_SEVERAL_PAIRS,
        "same -> same": SAME_USER,
    }


def test_a_cycle_and_a_user_kept_twice_fail_every_pair_they_touch():
    users = [user(i, p) for i, p in enumerate(["a", "b", "x", "y", "k"], start=1)]
    outcome = facts([("a", "b", None), ("b", "a", None), ("x", "k", None), ("y", "k", None)], users)["outcome"]
    assert set(outcome) == {USER_IN_SEVERAL_PAIRS}


def test_copy_as_internal_stated_per_pair_or_for_the_run_lets_internal_into_external():
    users = [user(1, "i1", account_type="INTERNAL"), user(2, "e1"), user(3, "i2", account_type="INTERNAL"),
             user(4, "e2")]
    per_pair = facts([("i1", "e1", True), ("i2", "e2", False)], users)
    assert list(per_pair["outcome"]) == [ELIGIBLE, ELIGIBLE]
    assert per_pair["segment_type"].to_dict() == {"i1 -> e1": "Internal", "i2 -> e2": "External"}
    for_run = facts([("i1", "e1", None), ("i2", "e2", True)], users, copy_as_internal=False)
    # The pair's own statement wins over the run's.
    assert for_run["segment_type"].to_dict() == {"i1 -> e1": "External", "i2 -> e2": "Internal"}


@pytest.mark.parametrize(("from_type", "to_type", "expected"), [
    ("EXTERNAL", "EXTERNAL", "External"),
    ("EXTERNAL", "INTERNAL", "Internal"),
    ("INTERNAL", "INTERNAL", "Internal"),
])
def test_unstated_copy_as_internal_follows_the_to_users_account_type(from_type, to_type, expected):
    result = facts([("f", "t", None)], [user(1, "f", account_type=from_type), user(2, "t", account_type=to_type)])
    assert result["outcome"].iloc[0] == ELIGIBLE
    assert result["segment_type"].iloc[0] == expected


def test_moved_counts_follow_the_clash_rules():
    users = [user(1, "f", loans=3, fees=2, fee_transactions=1, addresses=2, notes=1), user(2, "t", loans=5)]
    items = [
        (1, "roles", "200", "MAIN"), (2, "roles", "200", "MAIN"),        # To holds it: not duplicated
        (1, "roles", "200", "BRANCH"),                                    # new scope: moves
        (1, "identifiers", "BARCODE", "B-f"), (2, "identifiers", "BARCODE", "B-t"),
        (1, "proxy_for", "t", "p1"),                                      # would be a proxy for itself
        (1, "proxy_for", "z", "p2"), (2, "proxy_for", "z", "p3"),          # To already acts for z
        (1, "proxy_for", "w", "p4"),                                      # moves
        (1, "proxied_by", "2", "p5"),                                     # To acting for From: dropped
        (1, "proxied_by", "9", "p6"), (2, "proxied_by", "9", "p7"),          # 9 already acts for To
        (1, "proxied_by", "8", "p8"),                                     # repointed to To
    ]
    row = facts([("f", "t", None)], users, items).iloc[0]
    moved = {k: int(row[f"moved_{k}"]) for k in KINDS}
    assert moved == {"loans": 3, "requests": 0, "fees": 2, "fee_transactions": 1, "addresses": 2, "emails": 0,
                     "phones": 0, "identifiers": 1, "notes": 1, "blocks": 0, "statistics": 0, "attachments": 0,
                     "roles": 1, "proxy_for": 1, "proxied_by": 1}


@pytest.mark.parametrize("rows, pairs, proxy_for, proxied_by", [
    # u2 acts for u4, both From users, and u3 (u2's To) already acts for u4: that row goes with u2.
    ([(1, 2), (2, 4), (3, 4)], [("u0", "u1"), ("u2", "u3"), ("u4", "u5")], [0, 0, 0], [0, 1, 1]),
    # u1 -> u3 makes u3 act for u2, so u3 acting for u4 (u4 -> u2) is not made a second time.
    ([(1, 2), (2, 4), (3, 4)], [("u1", "u3"), ("u4", "u2"), ("u5", "u0")], [1, 0, 0], [0, 0, 0]),
    # u1 acts for u3 (both From users) and for u0 (u3's To): the first row would become the second's
    # u2 -> u0, so it goes with u1; only the second moves.
    ([(1, 3), (1, 2), (1, 0)], [("u1", "u2"), ("u3", "u0")], [1, 0], [0, 0]),
])
def test_proxies_chained_across_pairs_count_as_the_batch_moves_them(rows, pairs, proxy_for, proxied_by):
    users = [user(n + 1, f"u{n}") for n in range(6)]
    # The rows (u_a acts for u_b) as sql/merge/select_clash_items.sql lists them: once per pair user.
    items = [(a + 1, "proxy_for", f"u{b}", f"r{a}{b}") for a, b in rows] + [
        (b + 1, "proxied_by", str(a + 1), f"r{a}{b}") for a, b in rows]
    frame = facts([(f, t, None) for f, t in pairs], users, items)
    assert list(frame["moved_proxy_for"]) == proxy_for
    assert list(frame["moved_proxied_by"]) == proxied_by


def test_segments_not_chosen_move_nothing_but_loans_requests_and_fees_always_move():
    users = [user(1, "f", loans=1, requests=1, fees=1, fee_transactions=2, addresses=1, emails=1, phones=1,
                  notes=1, blocks=1, statistics=1, attachments=1), user(2, "t")]
    items = [(1, "roles", "200", "BRANCH"), (1, "identifiers", "UNIV_ID", "7"), (1, "proxy_for", "w", "p1"),
             (1, "proxied_by", "8", "p2")]
    for segment, kinds in [("contacts", {"addresses", "emails", "phones"}), ("identifiers", {"identifiers"}),
                           ("notes", {"notes"}), ("blocks", {"blocks"}), ("statistics", {"statistics"}),
                           ("attachments", {"attachments"}), ("roles", {"roles"}),
                           ("proxies", {"proxy_for", "proxied_by"})]:
        frame = facts([("f", "t", None)], users, items, segments=[segment])
        moved = {k for k, v in moved_totals(frame).items() if v}
        assert moved == {"loans", "requests", "fees", "fee_transactions"} | kinds, segment
