"""Why Merge Users would refuse a pair of two existing, different users, in its order. The one
statement of these checks: Merge Users decides by them (tasks/merge/rules.py) and Find Duplicate Users
marks the pairs it proposes with them (tasks/duplicates/rules.py), so a proposal says what a merge
would say. Pure pandas.

* PROTECTED: either user is protected;
* FROM_NOT_PATRON_ONLY: the From user holds a role other than Patron;
* COPY_AS_INTERNAL_REQUIRED: an INTERNAL From user into an EXTERNAL To user, and the pair does not
  state copy-as-internal. A user with no account type (NULL) counts as EXTERNAL.

`frame` has from_protected, to_protected, from_non_patron_roles, from_account_type, to_account_type.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from tasks.reasons import COPY_AS_INTERNAL_REQUIRED, FROM_NOT_PATRON_ONLY, PROTECTED


def refusal_checks(frame: pd.DataFrame, copy_as_internal: pd.Series | None = None
                   ) -> tuple[list[np.ndarray], list[str]]:
    """(conditions, reasons) in Merge Users' order, for np.select after the checks of its own (same
    user, in several pairs, not found). `copy_as_internal`: each pair's stated choice (None, NA or
    NaN: not stated); None: no pair states it."""
    protected = frame["from_protected"].fillna(False).astype(bool) | frame["to_protected"].fillna(False).astype(bool)
    not_patron_only = frame["from_non_patron_roles"].fillna(0).astype("int64") > 0
    needs_copy_choice = ((frame["from_account_type"] == "INTERNAL") & (frame["to_account_type"] != "INTERNAL")
                         ).to_numpy(dtype=bool)
    if copy_as_internal is not None:
        unstated = copy_as_internal.map(lambda v: v is None or v is pd.NA or v != v).to_numpy(dtype=bool)
        needs_copy_choice = needs_copy_choice & unstated
    return ([protected.to_numpy(dtype=bool), not_patron_only.to_numpy(dtype=bool), needs_copy_choice],
            [PROTECTED, FROM_NOT_PATRON_ONLY, COPY_AS_INTERNAL_REQUIRED])


def first_refusal(frame: pd.DataFrame, copy_as_internal: pd.Series | None = None) -> pd.Series:
    """Per pair the first reason Merge Users would refuse it for, None where it would merge it."""
    conditions, reasons = refusal_checks(frame, copy_as_internal)
    chosen = np.select(conditions, reasons, default="") if len(frame) else np.array([], dtype=object)
    return pd.Series([c or None for c in chosen], index=frame.index, dtype=object)
