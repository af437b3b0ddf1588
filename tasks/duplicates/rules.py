"""Find Duplicate Users: from the scored pairs to the pairs proposed for merging. Pure pandas.

* Rejected pairs are dropped before anything else: a person said the two are different people, so
  the pair is never proposed again and does not join their clusters either.
* Clusters are the connected components of the remaining pairs (what merging them all would join).
* Direction (docs/jobs/find-duplicates.md): in each cluster one record is kept (To) and every other
  one is a From merged into it. The To record is the first by these rules, in order:
  1. a user holding a role beyond Patron can only be To (Merge Users refuses such a From);
  2. INTERNAL over EXTERNAL (merging an INTERNAL From into an EXTERNAL To needs a copy-as-internal choice);
  3. more activity (loans, requests and fees ever attached: fewer rows move);
  4. the older record (the smaller user id: ids are given in the order records are created).
* A cluster of N records is N-1 pairs into its To user (a star), numbered by `merge_round` 1..N-1.
  Merge Users takes one pair per To user per run (the queue) or one round (`merge --pairs --round K`).
* A proposed pair Merge Users would refuse carries that reason (`merge_refusal`): Merge Users' own
  checks (tasks/library/merge_refusals.py): PROTECTED, FROM_NOT_PATRON_ONLY, COPY_AS_INTERNAL_REQUIRED.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from tasks.library.merge_refusals import first_refusal
from tasks.reasons import ALREADY_IN_QUEUE, ELIGIBLE, REJECTED_BEFORE, USER_NOT_FOUND

FACT_COLUMNS = ("primary_id", "protected", "account_type", "non_patron_roles", "activity")
WORD_COLUMNS = ("first_name", "last_name", "middle_name", "birth_date", "email", "phone", "postal_code",
                "identifiers")


def components(a: np.ndarray, b: np.ndarray) -> dict[int, int]:
    """Connected components of the edges a-b (union-find): node -> the smallest node of its component."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for x, y in zip(a.tolist(), b.tolist()):
        rx, ry = find(x), find(y)
        if rx != ry:
            parent[max(rx, ry)] = min(rx, ry)
    return {x: find(x) for x in parent}


def drop_rejected(pairs: pd.DataFrame, known: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pairs not rejected before, the rejected ones). `pairs` has user_id_l < user_id_r; `known` the
    queue's user_id_a, user_id_b, status."""
    rejected = known[known["status"] == "rejected"]
    keys = set(zip(rejected["user_id_a"].astype("int64"), rejected["user_id_b"].astype("int64")))
    hit = np.array([(int(l), int(r)) in keys for l, r in zip(pairs["user_id_l"], pairs["user_id_r"])], dtype=bool)
    return pairs[~hit].reset_index(drop=True), pairs[hit].reset_index(drop=True)


def keep_order(facts: pd.DataFrame) -> pd.Series:
    """Rank of each user (index: user_id) as the record to keep: 0 is the best To."""
    key = pd.DataFrame({
        "roles": -(facts["non_patron_roles"].fillna(0).astype("int64") > 0).astype("int64"),
        "internal": (facts["account_type"] != "INTERNAL").astype("int64"),
        "activity": -facts["activity"].fillna(0).astype("int64"),
        "older": facts.index.to_numpy(dtype="int64"),
    }, index=pd.Index(facts.index.to_numpy(dtype="int64")))
    ranked = key.sort_values(["roles", "internal", "activity", "older"])
    return pd.Series(np.arange(len(ranked)), index=ranked.index)


def direction_reason(to: pd.Series, frm: pd.Series) -> str:
    """Which rule chose the To record over the From record."""
    if (to["non_patron_roles"] > 0) != (frm["non_patron_roles"] > 0):
        return "roles beyond Patron"
    if to["account_type"] != frm["account_type"]:
        return "INTERNAL over EXTERNAL"
    if to["activity"] != frm["activity"]:
        return "more activity"
    return "older record"


def propose(pairs: pd.DataFrame, facts: pd.DataFrame) -> pd.DataFrame:
    """The star pairs of every cluster: one row per From user with its To user.

    `pairs`: the scorer's pairs (user_id_l, user_id_r, match_probability, evidence, word columns).
    `facts`: per user_id (index) FACT_COLUMNS. Each From user's row carries the evidence of its best
    scored pair inside the cluster: with the To user itself where scored, else with the record that
    links it (`linked_through`)."""
    columns = ["cluster", "from_id", "to_id", "from_primary_id", "to_primary_id", "probability", "evidence",
               "linked_through", "direction", "merge_round", *WORD_COLUMNS,
               *(f"from_{c}" for c in FACT_COLUMNS[1:]), *(f"to_{c}" for c in FACT_COLUMNS[1:])]
    if pairs.empty:
        return pd.DataFrame(columns=columns)
    left, right = pairs["user_id_l"].to_numpy(dtype="int64"), pairs["user_id_r"].to_numpy(dtype="int64")
    cluster_of = components(left, right)
    members = pd.DataFrame({"user_id": list(cluster_of), "cluster": list(cluster_of.values())})
    members = members[members["user_id"].isin(facts.index)]
    members["rank"] = members["user_id"].map(keep_order(facts.loc[members["user_id"]]))
    to_of = members.sort_values("rank").drop_duplicates("cluster").set_index("cluster")["user_id"]
    members["to_id"] = members["cluster"].map(to_of)
    froms = members[members["user_id"] != members["to_id"]].rename(columns={"user_id": "from_id"})
    # Both directions of every scored pair, so each From user finds its pairs on the left.
    both = pd.concat([pairs.assign(a=left, b=right), pairs.assign(a=right, b=left)], ignore_index=True)
    both = both.merge(froms[["from_id", "to_id"]], left_on="a", right_on="from_id")
    both["direct"] = both["b"] == both["to_id"]
    best = (both.sort_values(["direct", "match_probability"], ascending=[False, False])
            .drop_duplicates("from_id").set_index("from_id"))
    out = froms.set_index("from_id").join(best[["match_probability", "evidence", "direct", "b",
                                                *[c for c in WORD_COLUMNS if c in best]]])
    out = out.reset_index()
    through = out["b"].map(facts["primary_id"])
    out["linked_through"] = pd.Series([None if d else t for d, t in zip(out["direct"], through)],
                                      index=out.index, dtype=object)
    out["probability"] = out["match_probability"].astype(float)
    for side, ids in (("from", out["from_id"]), ("to", out["to_id"])):
        for c in FACT_COLUMNS:
            name = f"{side}_{c}" if c != "primary_id" else f"{side}_primary_id"
            out[name] = ids.map(facts[c]).to_numpy()
    out["direction"] = [direction_reason(facts.loc[t], facts.loc[f]) for f, t in zip(out["from_id"], out["to_id"])]
    out = out.sort_values(["to_id", "probability", "from_id"], ascending=[True, False, True])
    out["merge_round"] = out.groupby("to_id").cumcount() + 1
    for c in WORD_COLUMNS:
        if c not in out:
            out[c] = None
    return out.sort_values(["probability", "from_id"], ascending=[False, True])[columns].reset_index(drop=True)


def decide_proposals(frame: pd.DataFrame) -> pd.DataFrame:
    """Every proposed pair with an outcome: ELIGIBLE (a real run adds it to the review queue as
    proposed), REJECTED_BEFORE, ALREADY_IN_QUEUE, or USER_NOT_FOUND (a user purged or merged since)."""
    frame = frame.copy()
    status = frame["queue_status"].fillna("")
    missing = ~(frame["from_exists"].astype(bool) & frame["to_exists"].astype(bool))
    frame["merge_refusal"] = first_refusal(frame)
    frame["outcome"] = np.select(
        [(status == "rejected").to_numpy(), (status != "").to_numpy(), missing.to_numpy()],
        [REJECTED_BEFORE, ALREADY_IN_QUEUE, USER_NOT_FOUND], default=ELIGIBLE).astype(object)
    return frame
