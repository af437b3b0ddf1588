"""Undo a merge: which pairs of a merge run may be undone. Pure pandas.

In this order, the first that holds is the pair's reason:
- ALREADY_UNMERGED: an earlier unmerge undid it (reported, never undone twice);
- TO_USER_CHANGED: the To user is gone (merged into another user since) or purged;
- UNDO_EXPIRED: the merge is older than the retention period, or its undo record was removed;
- PRIMARY_ID_TAKEN: another user has the From user's primary id now;
- IDENTIFIER_TAKEN: another user holds an identifier the From user must get back.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from tasks.reasons import (ALREADY_UNMERGED, ELIGIBLE, IDENTIFIER_TAKEN, PRIMARY_ID_TAKEN, TO_USER_CHANGED,
                           UNDO_EXPIRED)
from tasks.segments import KINDS


def decide_unmerge(frame: pd.DataFrame, cutoff: dt.datetime) -> pd.DataFrame:
    """Every pair with an outcome; `cutoff`: merges before it can no longer be undone."""
    frame = frame.copy()
    merged_at = pd.to_datetime(frame["merged_at"])
    expired = (~frame["has_record"].astype(bool) | merged_at.isna() | (merged_at < pd.Timestamp(cutoff))).to_numpy()
    frame["outcome"] = np.select(
        [frame["unmerged"].astype(bool).to_numpy(), ~frame["to_present"].astype(bool).to_numpy(), expired,
         frame["primary_id_taken"].astype(bool).to_numpy(), frame["identifier_taken"].astype(bool).to_numpy()],
        [ALREADY_UNMERGED, TO_USER_CHANGED, UNDO_EXPIRED, PRIMARY_ID_TAKEN, IDENTIFIER_TAKEN],
        default=ELIGIBLE,
    ).astype(object)
    return frame


def moved_back_totals(frame: pd.DataFrame) -> dict[str, int]:
    """What undoing these pairs moves back to the From users, per kind (every kind named)."""
    return {kind: int(frame[f"back_{kind}"].astype("int64").sum()) if not frame.empty else 0 for kind in KINDS}
