"""Find Duplicate Users' rules, pure: direction, clusters as stars with rounds, merge refusals, the
queue outcomes, and the review queue's choice of pairs for one merge run."""
from __future__ import annotations

import pandas as pd

from tasks.duplicates.rules import decide_proposals, drop_rejected, propose
from tasks.merge.rules import decide_merge
from tasks.reasons import (ALREADY_IN_QUEUE, COPY_AS_INTERNAL_REQUIRED, ELIGIBLE, FROM_NOT_PATRON_ONLY, PROTECTED,
                           REJECTED_BEFORE)


def facts(rows):
    frame = pd.DataFrame(rows, columns=["user_id", "primary_id", "protected", "account_type", "non_patron_roles",
                                        "activity"])
    return frame.set_index("user_id")


def scored(*edges):
    return pd.DataFrame({"user_id_l": [a for a, _, _ in edges], "user_id_r": [b for _, b, _ in edges],
                         "match_probability": [p for _, _, p in edges],
                         "evidence": [f"e{a}-{b}" for a, b, _ in edges]})


def one_pair(a, b):
    out = propose(scored((1, 2, 0.99)), facts([(1, "A", False, *a), (2, "B", False, *b)]))
    assert len(out) == 1
    return out.iloc[0]


def test_roles_beyond_patron_make_the_to_user():
    pair = one_pair(("INTERNAL", 0, 9), ("EXTERNAL", 1, 0))
    assert (pair.from_primary_id, pair.to_primary_id, pair.direction) == ("A", "B", "roles beyond Patron")


def test_internal_over_external():
    pair = one_pair(("EXTERNAL", 0, 9), ("INTERNAL", 0, 0))
    assert (pair.to_primary_id, pair.direction) == ("B", "INTERNAL over EXTERNAL")


def test_more_activity_then_older_record():
    pair = one_pair(("EXTERNAL", 0, 1), ("EXTERNAL", 0, 5))
    assert (pair.to_primary_id, pair.direction) == ("B", "more activity")
    pair = one_pair(("EXTERNAL", 0, 0), ("EXTERNAL", 0, 0))
    assert (pair.to_primary_id, pair.direction) == ("A", "older record")


def test_three_records_become_a_star_into_one_to_user_in_rounds():
    # 1-2 and 2-3 scored, 1-3 not: one cluster, one To (3: INTERNAL), two From users, one per round.
    out = propose(scored((1, 2, 0.99), (2, 3, 0.97)),
                  facts([(1, "A", False, "EXTERNAL", 0, 0), (2, "B", False, "EXTERNAL", 0, 0),
                         (3, "C", False, "INTERNAL", 0, 0)]))
    assert set(out["to_primary_id"]) == {"C"} and sorted(out["from_primary_id"]) == ["A", "B"]
    assert sorted(out["merge_round"]) == [1, 2] and out["cluster"].nunique() == 1
    a = out[out["from_primary_id"] == "A"].iloc[0]
    assert a.linked_through == "B" and a.evidence == "e1-2"      # A was scored only against B
    b = out[out["from_primary_id"] == "B"].iloc[0]
    assert b.linked_through is None and b.evidence == "e2-3"


def test_a_pair_merge_would_refuse_carries_the_reason_merge_gives():
    frame = pd.DataFrame({"from_protected": [True, False, False, False, False], "to_protected": [False] * 5,
                          "from_non_patron_roles": [0, 2, 0, 0, 0],
                          "from_account_type": ["EXTERNAL", "EXTERNAL", "INTERNAL", "EXTERNAL", "INTERNAL"],
                          # a To user with no account type counts as EXTERNAL, as in Merge Users
                          "to_account_type": ["EXTERNAL", "EXTERNAL", "EXTERNAL", "INTERNAL", None],
                          "queue_status": [None] * 5, "from_exists": [True] * 5, "to_exists": [True] * 5})
    proposed = decide_proposals(frame)
    assert list(proposed["merge_refusal"]) == [PROTECTED, FROM_NOT_PATRON_ONLY, COPY_AS_INTERNAL_REQUIRED, None,
                                               COPY_AS_INTERNAL_REQUIRED]
    # Merge Users, given the same pairs with no copy-as-internal stated, refuses them for the same reasons.
    pairs = frame.assign(pair_no=range(1, 6), from_primary_id=[f"F{i}" for i in range(5)],
                         to_primary_id=[f"T{i}" for i in range(5)], copy_as_internal=None)
    merged = decide_merge(pairs, pairs)
    assert [o if o != ELIGIBLE else None for o in merged["outcome"]] == list(proposed["merge_refusal"])


def test_rejected_pairs_are_dropped_before_clustering_and_queued_ones_are_not_queued_again():
    pairs = scored((1, 2, 0.99), (2, 3, 0.98))
    kept, rejected = drop_rejected(pairs, pd.DataFrame({"user_id_a": [1], "user_id_b": [2], "status": ["rejected"]}))
    assert list(zip(kept.user_id_l, kept.user_id_r)) == [(2, 3)] and len(rejected) == 1
    frame = pd.DataFrame({"queue_status": [None, "proposed", "rejected"], "from_exists": [True] * 3,
                          "to_exists": [True] * 3, "from_protected": [False] * 3, "to_protected": [False] * 3,
                          "from_non_patron_roles": [0] * 3, "from_account_type": ["EXTERNAL"] * 3,
                          "to_account_type": ["INTERNAL"] * 3})
    assert list(decide_proposals(frame)["outcome"]) == [ELIGIBLE, ALREADY_IN_QUEUE, REJECTED_BEFORE]
