"""Merge Users in the database: read the pairs, select both users' facts, lock and merge a batch of
pairs with one set-based statement per kind. The rules that decide which pairs may be merged and what
moves are in tasks/merge/rules.py; the clash rules' SQL in sql/merge/."""
from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Connection

from tasks.db.engine import get_engine, read_connection
from tasks.db.row_locks import lock_users
from tasks.db.sql import sql_for
from tasks.engine.definition import JobRun
from tasks.engine.parameters import named, offered
from tasks.engine.records import record_events
from tasks.engine.report import table
from tasks.engine.selection import read_chunks
from tasks.errors import InvalidInput
from tasks.library.review_queue import accepted_for_merge, mark_merged
from tasks.merge.pairs_file import read_pairs_csv
from tasks.merge.parameters import MergePair, MergeParameters
from tasks.db import undo_record
from tasks.db.statements import move_to_user, pair_map
from tasks.merge.rules import KINDS, PARTS, decide_merge, moved_totals, pair_facts, pair_table, segment_kinds
from tasks.reasons import CHANGED_SINCE_SELECTION

PAIRS_PER_SELECT = 500          # keeps each IN list well under SQLite's bound-variable limit
PER_PAIR_REPORT_LIMIT = 50      # above this, the report gives totals only (the job events keep every pair)


def prepare(parameters: MergeParameters) -> MergeParameters:
    """The parameters with the pairs file read. Refuses a run with no pairs, a half-given pair, or a
    single pair (From and To given as parameters) of a user with itself or naming a user who does not
    exist: such a pair is a parameter like any other. In a pairs file the same pair is a failed pair and
    the others go on, so that a file can be rerun after a crash."""
    from_, to = named("from_user"), named("to_user")
    if (parameters.from_user is None) != (parameters.to_user is None):
        raise InvalidInput(f"{from_} and {to} go together: give both")
    single = parameters.single_pair()
    if single is not None and parameters.pairs_file:
        raise InvalidInput(f"give either {from_}/{to} or {named('pairs_file')}, not both")
    if parameters.merge_round is not None and not parameters.pairs_file:
        raise InvalidInput(f"{named('merge_round')} goes with {named('pairs_file')} (a file find-duplicates --export wrote)")
    if parameters.pairs_file:
        parameters._file_pairs = read_pairs_csv(parameters.pairs_file, parameters.merge_round)
    if parameters.from_queue:
        parameters._file_pairs = _accepted_queue_pairs(parameters, single)
    if not parameters.all_pairs():
        sources = [f"{from_} and {to}", *(named(f) for f in ("pairs", "pairs_file", "from_queue") if offered(f))]
        raise InvalidInput(f"no pairs to merge: give {', '.join(sources[:-1])} or {sources[-1]}")
    if single is not None:
        _check_single_pair(single.from_user, single.to_user)
    return parameters


def _accepted_queue_pairs(parameters: MergeParameters, single) -> list[MergePair]:
    """The accepted pairs of the review queue this run merges (one per To user: review_queue.py)."""
    if single is not None or parameters.pairs_file:
        raise InvalidInput(f"give one of {named('from_user')}/{named('to_user')}, {named('pairs_file')} "
                           f"or {named('from_queue')}")
    with read_connection(get_engine()) as conn:
        taken, waiting = accepted_for_merge(conn)
    if taken.empty:
        raise InvalidInput("the review queue holds no accepted pairs (python -m flows duplicates list)")
    if waiting:
        logging.getLogger(__name__).info("%s accepted pairs wait for a later run: their To user is in a pair of this run",
                              f"{waiting:,}")
    return [MergePair(from_user=p.from_primary_id, to_user=p.to_primary_id) for p in taken.itertuples(index=False)]


def _check_single_pair(from_user: str, to_user: str) -> None:
    from_, to = named("from_user"), named("to_user")
    if from_user == to_user:
        raise InvalidInput(f"{from_} and {to} both name {from_user!r}: a user cannot be merged into itself")
    with read_connection(get_engine()) as conn:
        found = {row.primary_id for row in conn.execute(sql_for(conn, "merge/select_users"),
                                                        {"primary_ids": [from_user, to_user]})}
    missing = [f"{name} {pid!r}" for name, pid in ((from_, from_user), (to, to_user)) if pid not in found]
    if missing:
        raise InvalidInput(f"no such user: {', '.join(missing)} "
                           "(no user with that primary id, or already purged or merged)")


def select(conn: Connection, parameters: MergeParameters, run: JobRun,
           keys: Sequence[Any] | None = None) -> Iterator[pd.DataFrame]:
    """Each pair with both users' facts and what merging it would move, chunk by chunk of pairs."""
    pairs = pair_table(parameters.all_pairs(), parameters.copy_as_internal)
    if keys is not None:
        pairs = pairs[pairs["pair_no"].isin([int(k) for k in keys])]
    for start in range(0, max(len(pairs), 1), PAIRS_PER_SELECT):
        chunk = pairs.iloc[start:start + PAIRS_PER_SELECT]
        primary_ids = sorted(set(chunk["from_primary_id"]) | set(chunk["to_primary_id"])) or [""]
        users = pd.concat(list(read_chunks(conn, "merge/select_users", {"primary_ids": primary_ids})),
                          ignore_index=True)
        user_ids = [int(i) for i in users["user_id"]] or [-1]
        items = pd.concat(list(read_chunks(conn, "merge/select_clash_items", {"user_ids": user_ids})),
                          ignore_index=True)
        yield pair_facts(chunk, users, items, parameters.segments)


def decide(frame: pd.DataFrame, parameters: MergeParameters, run: JobRun) -> pd.DataFrame:
    return decide_merge(frame, pair_table(parameters.all_pairs(), parameters.copy_as_internal))


def count(eligible: pd.DataFrame) -> dict[str, Any]:
    return {"merged": int(eligible["pair_no"].nunique()), "moved": moved_totals(eligible)}


def lock(conn: Connection, batch: pd.DataFrame) -> None:
    """Both users of every pair, in one id-ordered lock."""
    ids = pd.concat([batch["from_id"], batch["to_id"]]).dropna().astype("int64")
    lock_users(conn, ids)


def moves(conn: Connection, segments: Sequence[str]) -> Iterator[tuple[Any, str | None]]:
    """(statement, the kind its row count is) for what a merge with these segments moves, in order:
    the table of parts (tasks/segments.py) says which move plainly and which by a clash rule."""
    for part in PARTS:
        if part.segment is not None and part.segment not in segments:
            continue
        if part.preferred:
            yield sql_for(conn, f"merge/unprefer_{part.kind}"), None
        if part.clash_rule:
            yield sql_for(conn, f"merge/move_{part.kind}"), part.kind
        else:
            yield move_to_user(part.table, part.segment_typed), part.kind


def merge(conn: Connection, pairs: pd.DataFrame, parameters: MergeParameters, run: JobRun) -> dict[str, Any]:
    """Merge the batch's pairs: one statement per kind for all of them, then delete the From users."""
    pair_map.create(conn)
    conn.execute(pair_map.insert(), [
        {"from_id": int(p.from_id), "to_id": int(p.to_id), "from_primary_id": p.from_primary_id,
         "to_primary_id": p.to_primary_id, "segment_type": p.segment_type}
        for p in pairs.itertuples(index=False)
    ])
    # The undo record (tasks/db/undo_record.py): the From users as they are, before anything moves...
    undo_record.write_records(conn, run.run_id, run.now)
    moved = dict.fromkeys(KINDS, 0)
    for statement, kind in moves(conn, parameters.segments):
        rows = conn.execute(statement).rowcount
        if kind:
            moved[kind] = rows
    # Transactions are not updated: they follow their fee. Their count is the selection's, re-read
    # under this batch's lock.
    moved["fee_transactions"] = int(pairs["moved_fee_transactions"].sum())
    expected = moved_totals(pairs)
    if moved != expected:
        # The rules and the SQL disagree: roll the batch back rather than report a merge nobody previewed.
        raise RuntimeError(f"merge moved {moved}, the preview said {expected}; batch rolled back")
    # ... and which of their rows did not move (they go with the From users).
    undo_record.write_kept(conn, run.run_id)
    kinds = segment_kinds(parameters.segments)
    record_events(conn, run, "USER_MERGED", [
        {"user_id": int(p["to_id"]), "details": {
            "from": p["from_primary_id"], "to": p["to_primary_id"], "segment_type": p["segment_type"],
            "moved": {k: int(p[f"moved_{k}"]) for k in kinds}}}
        for _, p in pairs.iterrows()
    ])
    record_events(conn, run, "USER_DELETED", [
        {"user_id": int(p.from_id), "details": {"merged_into": p.to_primary_id, "primary_id": p.from_primary_id}}
        for p in pairs.itertuples(index=False)
    ])
    conn.execute(sql_for(conn, "merge/delete_proxies_for_from_users"))
    conn.execute(sql_for(conn, "merge/delete_from_users"))
    pair_map.drop(conn)
    mark_queue_merged(conn, pairs, run)
    return {"merged": len(pairs), "moved": moved}


def mark_queue_merged(conn: Connection, pairs: pd.DataFrame, run: JobRun) -> None:
    """Pairs of the review queue (Find Duplicate Users) that this batch merged are marked merged,
    whichever way the pairs were given (queue, file, From/To), in the batch's transaction."""
    mark_merged(conn, [(int(p.from_id), int(p.to_id)) for p in pairs.itertuples(index=False)], run.run_id, run.now)


def shape_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The contract's merge counts: `failed` by reason; `skipped` only for pairs left alone because
    they changed between preview and merge; `pairs` every pair of the run."""
    reasons = dict(summary.pop("skipped"))
    changed = reasons.pop(CHANGED_SINCE_SELECTION, 0)
    merged, moved = summary.pop("merged"), summary.pop("moved")
    return {
        **summary,
        "skipped": {CHANGED_SINCE_SELECTION: changed} if changed else {},
        "pairs": merged + changed + sum(reasons.values()),
        "merged": merged,
        "failed": reasons,
        "moved": moved,
    }


def per_pair_section(merged: pd.DataFrame) -> list[str]:
    """What moved for each merged pair, for runs small enough to read."""
    heading = "## Per pair"
    if merged.empty:
        return [f"{heading}\n_none_"]
    if len(merged) > PER_PAIR_REPORT_LIMIT:
        return [f"{heading}\n_{len(merged):,} pairs: totals only (the job events USER_MERGED hold every pair)._"]
    kinds = [k for k in KINDS if merged[f"moved_{k}"].sum() > 0]
    rows = [(p["pair_no"], p["pair"], p["segment_type"], *(int(p[f"moved_{k}"]) for k in kinds))
            for _, p in merged.sort_values("pair_no").iterrows()]
    return [f"{heading}\n" + table(rows, ("#", "pair", "segment type", *kinds))]
