"""Undo a merge's rules, pure: the reason a pair cannot be undone, in order."""
from __future__ import annotations

import datetime as dt

import pandas as pd

from tasks.unmerge.rules import decide_unmerge

CUTOFF = dt.datetime(2026, 11, 20)
FRESH, OLD = dt.datetime(2026, 12, 1), dt.datetime(2026, 11, 1)


def pair(**facts):
    row = {"from_primary_id": "a", "has_record": True, "unmerged": False, "merged_at": FRESH, "to_present": True,
           "primary_id_taken": False, "identifier_taken": False}
    return {**row, **facts}


def outcomes(*rows):
    return list(decide_unmerge(pd.DataFrame(list(rows)), CUTOFF)["outcome"])


def test_each_reason_and_their_order():
    assert outcomes(pair(), pair(merged_at=OLD), pair(has_record=False, merged_at=None), pair(to_present=False),
                    pair(primary_id_taken=True), pair(identifier_taken=True), pair(unmerged=True)) == [
        "ELIGIBLE", "UNDO_EXPIRED", "UNDO_EXPIRED", "TO_USER_CHANGED", "PRIMARY_ID_TAKEN", "IDENTIFIER_TAKEN",
        "ALREADY_UNMERGED"]
    # Already undone wins over everything; a purged or merged-away To user over expiry (the purge removes
    # the record too); expiry over what others hold now.
    assert outcomes(pair(unmerged=True, to_present=False, has_record=False),
                    pair(to_present=False, has_record=False),
                    pair(merged_at=OLD, primary_id_taken=True, identifier_taken=True),
                    pair(primary_id_taken=True, identifier_taken=True)) == [
        "ALREADY_UNMERGED", "TO_USER_CHANGED", "UNDO_EXPIRED", "PRIMARY_ID_TAKEN"]


def test_a_merge_exactly_at_the_cutoff_can_still_be_undone():
    assert outcomes(pair(merged_at=CUTOFF)) == ["ELIGIBLE"]
