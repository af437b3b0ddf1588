"""Merge Users: which pairs may be merged, and what each merge moves. Pure pandas.

A pair is merged only when both users exist, they differ, neither appears in another pair of the run,
and none of the refusals of tasks/library/merge_refusals.py applies (neither is protected, the From
user holds no role other than Patron, an INTERNAL -> EXTERNAL pair states copy-as-internal). What moves follows the clash rules the SQL in sql/merge/ applies, so a dry
run counts exactly what a real run moves.

Fields kept beyond the typed columns (`extra`, tasks/alma/format.py): the To user keeps its own user
row, extra included; the From user's user-row extra (full_name, gender, pref_* names, ...) is not copied
and goes with the deleted From user. Every row that moves (addresses, roles, loans, fees, ...) takes its
own extra with it; a role or identifier that clashes stays with the From user and goes with it.
A user with no account type (NULL) counts as EXTERNAL.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from tasks.library.merge_refusals import refusal_checks
from tasks.segments import ALWAYS_MOVED, KINDS, PARTS, SEGMENT_KINDS, SEGMENTS  # noqa: F401
from tasks.reasons import (  # noqa: F401 - the rules' vocabulary
    ELIGIBLE, SAME_USER, USER_IN_SEVERAL_PAIRS, USER_NOT_FOUND, PROTECTED, FROM_NOT_PATRON_ONLY, COPY_AS_INTERNAL_REQUIRED,
)

# Counted per user by sql/merge/select_users.sql: these move whole. Listed item by item by
# sql/merge/select_clash_items.sql: those that may clash with what the To user holds.
CLASH_KINDS = tuple(p.kind for p in PARTS if p.clash_rule)
COUNTED_KINDS = tuple(k for k in KINDS if k not in CLASH_KINDS)

PATRON_ROLE = "200"


PAIR_COLUMNS = ["pair_no", "from_primary_id", "to_primary_id", "copy_as_internal"]


def pair_table(pairs: Sequence[tuple[str, str, bool | None]], copy_as_internal: bool | None) -> pd.DataFrame:
    """The run's pairs numbered from 1, each with the copy-as-internal it is merged with: its own
    (a CSV column) where stated, else the run's."""
    rows = [
        (number, from_user, to_user, own if own is not None else copy_as_internal)
        for number, (from_user, to_user, own) in enumerate(pairs, start=1)
    ]
    frame = pd.DataFrame.from_records(rows, columns=PAIR_COLUMNS)
    frame["pair"] = frame["from_primary_id"] + " -> " + frame["to_primary_id"]
    frame["copy_as_internal"] = frame["copy_as_internal"].astype(object)
    return frame


def segment_kinds(segments: Sequence[str]) -> tuple[str, ...]:
    """What a merge with these segments moves: loans, requests and fees always, plus the segments'."""
    return ALWAYS_MOVED + tuple(k for s in SEGMENTS if s in segments for k in SEGMENT_KINDS[s])


def segment_type_for(copy_as_internal: pd.Series, to_account_type: pd.Series) -> pd.Series:
    """Copied segments are Internal with copy-as-internal, External with no-copy-as-internal, and when
    the pair does not say, of the To user's kind (an INTERNAL user's record is internal throughout)."""
    stated = copy_as_internal.map(lambda v: None if v is None or v is pd.NA or v != v else bool(v))
    default = np.where(to_account_type == "INTERNAL", "Internal", "External")
    chosen = np.where(stated.isna(), default, np.where(stated.fillna(False).astype(bool), "Internal", "External"))
    return pd.Series(chosen, index=copy_as_internal.index, dtype=object)


def clash_free_counts(pairs: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Per pair, how many of the From user's identifiers, roles and proxy rows move (CLASH_KINDS).

    `items` lists (user_id, kind, a, b) for both users of each pair. An identifier or role moves unless
    the To user already holds the same one (type+value, type+scope); proxy rows as proxy_moves says."""
    out = pd.DataFrame(0, index=pd.Index(pairs["pair_no"], name="pair_no"), columns=list(CLASH_KINDS))
    both = pairs.dropna(subset=["from_id", "to_id"])
    if both.empty or items.empty:
        return out
    both = both.assign(from_id=both["from_id"].astype("int64"), to_id=both["to_id"].astype("int64"))
    items = items.assign(user_id=items["user_id"].astype("int64"), a=items["a"].astype(str),
                         b=items["b"].fillna("").astype(str))
    proxies = items["kind"].isin(["proxy_for", "proxied_by"])
    owned = items[~proxies]
    from_items = both[["pair_no", "from_id", "to_id"]].merge(owned, left_on="from_id", right_on="user_id")
    held_by_to = (owned.rename(columns={"user_id": "to_id"})[["to_id", "kind", "a", "b"]]
                  .drop_duplicates().assign(held_by_to=True))
    from_items = from_items.merge(held_by_to, on=["to_id", "kind", "a", "b"], how="left")
    moving = from_items[~from_items["held_by_to"].fillna(False).astype(bool)]
    counts = moving.groupby(["pair_no", "kind"]).size().unstack(fill_value=0)
    out.update(counts.reindex(index=out.index, columns=out.columns).fillna(0))
    for kind, per_pair in proxy_moves(both, items[proxies]).items():
        out.loc[list(per_pair), kind] = list(per_pair.values())
    return out.astype("int64")


def proxy_moves(pairs: pd.DataFrame, items: pd.DataFrame) -> dict[str, dict[int, int]]:
    """Per kind (proxy_for, proxied_by), per pair number, how many proxy rows the batch's two proxy
    statements move: the same two steps as sql/merge/move_proxy_for.sql then move_proxied_by.sql, on the
    rows `items` lists (a row by its id in `b`), so chained proxies count as the batch moves them.

    1. A row of a From user (it acts for someone) now belongs to its To user, unless the To user would
       act for itself or already acts for that user (as the rows stood before this step), or that user
       is another From user of the batch whose To user the To user acts for after this step (it did
       already, or the From user did): step 2 would not re-point that row, and it would be deleted
       naming a From user after being counted as moved. It goes with its From user.
    2. A row naming a From user now names its To user, unless the To user would act for itself, the
       user already acts for the To user (as the rows stand after step 1: a row step 1 moved counts), or
       the user is a From user of the batch too, whose row step 1 left with it: it goes with that user
       (as it would were the two pairs merged in two batches), not re-pointed first.
    A row left in place is deleted with its From user (sql/merge/delete_proxies_for_from_users.sql)."""
    moved: dict[str, dict[int, int]] = {"proxy_for": {}, "proxied_by": {}}
    by_from_id = {int(p.from_id): p for p in pairs.itertuples(index=False)}
    by_from_pid = {p.from_primary_id: p for p in pairs.itertuples(index=False)}
    primary_id = {int(p.from_id): p.from_primary_id for p in pairs.itertuples(index=False)}
    primary_id.update({int(p.to_id): p.to_primary_id for p in pairs.itertuples(index=False)})
    rows: dict[str, tuple[int, str]] = {}            # row id -> (acting user id, primary id acted for)
    for item in items.itertuples(index=False):
        if item.kind == "proxy_for":
            rows[item.b] = (int(item.user_id), item.a)
        elif int(item.user_id) in primary_id:
            rows[item.b] = (int(item.a), primary_id[int(item.user_id)])
    before = set(rows.values())
    for row_id, (user_id, target) in list(rows.items()):
        pair = by_from_id.get(user_id)
        if pair is None:
            continue
        to_id, other = int(pair.to_id), by_from_pid.get(target)
        dead_end = other is not None and ((user_id, other.to_primary_id) in before
                                          or (to_id, other.to_primary_id) in before)
        if target != pair.to_primary_id and (to_id, target) not in before and not dead_end:
            rows[row_id] = (to_id, target)
            moved["proxy_for"][pair.pair_no] = moved["proxy_for"].get(pair.pair_no, 0) + 1
    after_first = set(rows.values())
    for user_id, target in rows.values():
        pair = by_from_pid.get(target)
        if (pair is not None and user_id != int(pair.to_id) and user_id not in by_from_id
                and (user_id, pair.to_primary_id) not in after_first):
            moved["proxied_by"][pair.pair_no] = moved["proxied_by"].get(pair.pair_no, 0) + 1
    return moved


def pair_facts(pairs: pd.DataFrame, users: pd.DataFrame, items: pd.DataFrame,
               segments: Sequence[str]) -> pd.DataFrame:
    """One row per pair with both users' facts and, per kind, what merging it would move (`moved_*`).

    `users` holds the users found (sql/merge/select_users.sql), `items` their clashable items."""
    facts = users.set_index("primary_id")
    frame = pairs.merge(facts[["user_id", "protected", "account_type", "non_patron_roles", *COUNTED_KINDS]]
                        .add_prefix("from_"), left_on="from_primary_id", right_index=True, how="left")
    frame = frame.merge(facts[["user_id", "protected", "account_type"]].add_prefix("to_"),
                        left_on="to_primary_id", right_index=True, how="left")
    frame = frame.rename(columns={"from_user_id": "from_id", "to_user_id": "to_id"})
    for side in ("from", "to"):
        # Nullable integers: a missing user must not turn the other pairs' ids into floats, or a
        # batch re-check (which sees only its own pairs) would see them "changed".
        frame[f"{side}_id"] = frame[f"{side}_id"].astype("Int64")
        frame[f"{side}_exists"] = frame[f"{side}_id"].notna()
        frame[f"{side}_protected"] = frame[f"{side}_protected"].fillna(False).astype(bool)
        # A user whose record did not say its account type (NULL, docs/alma-format.md) counts as
        # EXTERNAL: merging an INTERNAL user into it then needs the explicit copy-as-internal choice.
        frame[f"{side}_account_type"] = frame[f"{side}_account_type"].astype(object).where(
            ~(frame[f"{side}_exists"] & frame[f"{side}_account_type"].isna()), "EXTERNAL")
    frame["from_non_patron_roles"] = frame["from_non_patron_roles"].fillna(0).astype("int64")
    clash_free = clash_free_counts(frame, items)
    moving = set(segment_kinds(segments))
    for kind in KINDS:
        if kind in COUNTED_KINDS:
            count = frame[f"from_{kind}"].fillna(0).astype("int64").to_numpy()
        else:
            count = clash_free.loc[frame["pair_no"], kind].to_numpy()
        frame[f"moved_{kind}"] = count if kind in moving else 0
    frame = frame.drop(columns=[f"from_{k}" for k in COUNTED_KINDS])
    frame["segment_type"] = segment_type_for(frame["copy_as_internal"], frame["to_account_type"])
    return frame.reset_index(drop=True)


def decide_merge(frame: pd.DataFrame, all_pairs: pd.DataFrame) -> pd.DataFrame:
    """Every pair with an outcome: ELIGIBLE, or the first reason it may not be merged.

    `all_pairs` is every pair of the run (a batch re-check sees only its own): a user named in two
    pairs would make the result depend on their order (chains, cycles), so all such pairs fail."""
    frame = frame.copy()
    named = pd.concat([all_pairs[["pair_no", "from_primary_id"]].rename(columns={"from_primary_id": "user"}),
                       all_pairs[["pair_no", "to_primary_id"]].rename(columns={"to_primary_id": "user"})])
    pairs_per_user = named.drop_duplicates().groupby("user")["pair_no"].nunique()
    in_several = (frame["from_primary_id"].map(pairs_per_user).fillna(0).to_numpy() > 1) | (
        frame["to_primary_id"].map(pairs_per_user).fillna(0).to_numpy() > 1)
    same = (frame["from_primary_id"] == frame["to_primary_id"]).to_numpy()
    missing = ~(frame["from_exists"] & frame["to_exists"]).to_numpy()
    refused, refusals = refusal_checks(frame, frame["copy_as_internal"])
    frame["outcome"] = np.select(
        [same, in_several, missing, *refused],
        [SAME_USER, USER_IN_SEVERAL_PAIRS, USER_NOT_FOUND, *refusals],
        default=ELIGIBLE,
    ).astype(object)
    return frame


def moved_totals(frame: pd.DataFrame) -> dict[str, int]:
    """What merging these pairs moves, per kind (every kind named, zeros included)."""
    return {kind: int(frame[f"moved_{kind}"].astype("int64").sum()) if not frame.empty else 0 for kind in KINDS}
