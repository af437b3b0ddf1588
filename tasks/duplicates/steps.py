"""Find Duplicate Users in the database: read every user not purged (lists aggregated by the database,
chunk by chunk), score them with the splink scorer (tasks/duplicates/linkage.py), propose star pairs
with the rules (tasks/duplicates/rules.py), export them, and, in a real run, add them to the review
queue batch by batch. No user is changed.

The scan runs once per run, in `select` without keys. A batch's re-check (`select` with keys) takes
the run's scored pairs from memory and re-reads only what may have changed since: both users' facts
and the queue status of the pair."""
from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection

from tasks.db.row_locks import lock_users
from tasks.db.statements import LIST_SEPARATOR, users_to_scan
from tasks.duplicates.linkage import find_duplicate_pairs
from tasks.duplicates.parameters import DuplicatesParameters
from tasks.duplicates.rules import FACT_COLUMNS, decide_proposals, drop_rejected, propose
from tasks.engine.definition import JobRun
from tasks.engine.parameters import named
from tasks.engine.report import table
from tasks.engine.selection import read_chunks
from tasks.errors import InvalidInput
from tasks.library.review_queue import EXPORT_COLUMNS, add_proposed, known_pairs, statuses_of
from tasks.reasons import REJECTED_BEFORE

USERS_PER_FACTS_SELECT = 500
TOP_PAIRS_IN_REPORT = 25


@dataclass
class Scan:
    users_scanned: int
    pairs_scored: int
    proposals: pd.DataFrame
    rejected_before: int


# The scan of each run in this process, by run id: the batches' re-checks and the summary read it.
_SCANS: dict[str, Scan] = {}


def validate(conn: Connection, parameters: DuplicatesParameters) -> None:
    """The export file's folder exists where the flow runs (the user groups: the engine's code check)."""
    if parameters.export_file:
        folder = Path(parameters.export_file).expanduser().resolve().parent
        if not folder.is_dir():
            raise InvalidInput(f"{named('export_file')} {parameters.export_file!r}: no such folder {str(folder)!r}")


def read_facts(conn: Connection, user_ids: Sequence[int]) -> pd.DataFrame:
    """FACT_COLUMNS of these users, indexed by user_id (purged or deleted users are absent)."""
    ids = sorted({int(i) for i in user_ids})
    frames = [pd.DataFrame(columns=["user_id", *FACT_COLUMNS])]
    for start in range(0, len(ids), USERS_PER_FACTS_SELECT):
        frames += list(read_chunks(conn, "duplicates/select_pair_users",
                                   {"user_ids": ids[start:start + USERS_PER_FACTS_SELECT]}))
    facts = pd.concat([f for f in frames if not f.empty] or frames[:1], ignore_index=True)
    facts["user_id"] = facts["user_id"].astype("int64")
    facts["protected"] = facts["protected"].astype(bool)
    for c in ("non_patron_roles", "activity"):
        facts[c] = facts[c].astype("int64")
    return facts.set_index("user_id")


def with_current_state(conn: Connection, proposals: pd.DataFrame) -> pd.DataFrame:
    """The proposals with what may change meanwhile re-read: both users' facts and the queue status."""
    frame = proposals.copy()
    facts = read_facts(conn, list(frame["from_id"]) + list(frame["to_id"]))
    for side in ("from", "to"):
        ids = frame[f"{side}_id"]
        frame[f"{side}_exists"] = ids.isin(facts.index).to_numpy()
        for c in FACT_COLUMNS[1:]:
            frame[f"{side}_{c}"] = ids.map(facts[c]).to_numpy()
    keys = [(min(int(f), int(t)), max(int(f), int(t))) for f, t in zip(frame["from_id"], frame["to_id"])]
    status = statuses_of(conn, keys)
    frame["queue_status"] = [status.get(k) for k in keys]
    return frame


def scan(conn: Connection, parameters: DuplicatesParameters, run: JobRun) -> Scan:
    groups = list(parameters.user_groups)
    # The chunks go straight into the scorer's DuckDB (lists split there), so the library is never
    # held as one pandas frame here.
    chunks = read_chunks(conn, users_to_scan(),
                         {"all_groups": 0 if groups else 1, "groups": groups or [""]})
    pairs = find_duplicate_pairs(chunks, min_probability=parameters.min_probability,
                                 temp_dir=tempfile.gettempdir(), list_separator=LIST_SEPARATOR)
    users_scanned = int(pairs.attrs["users"])
    kept, rejected = drop_rejected(pairs, known_pairs(conn))
    ids = pd.concat([kept["user_id_l"], kept["user_id_r"]]).astype("int64").unique().tolist()
    proposals = propose(kept, read_facts(conn, ids))
    proposals.insert(0, "pair_no", range(1, len(proposals) + 1))
    proposals["pair"] = proposals["from_primary_id"].astype(str) + " -> " + proposals["to_primary_id"].astype(str)
    return Scan(users_scanned=users_scanned, pairs_scored=len(pairs), proposals=proposals,
                rejected_before=len(rejected))


def select(conn: Connection, parameters: DuplicatesParameters, run: JobRun,
           keys: Sequence[Any] | None = None) -> Iterator[pd.DataFrame]:
    """The run's proposed pairs with their current state: the scan itself on the first call of the
    run, the scan's pairs named by `keys` re-read on a batch's re-check."""
    if keys is None:
        found = scan(conn, parameters, run)
        _SCANS.clear()          # one run at a time in a process; older scans are not needed
        _SCANS[run.run_id] = found
        proposals = with_current_state(conn, found.proposals)
        if parameters.export_file:
            write_export(parameters.export_file, decide_proposals(proposals))
        yield proposals
        return
    proposals = _SCANS[run.run_id].proposals
    yield with_current_state(conn, proposals[proposals["pair_no"].isin([int(k) for k in keys])])


def decide(frame: pd.DataFrame, parameters: DuplicatesParameters, run: JobRun) -> pd.DataFrame:
    return decide_proposals(frame)


def count(eligible: pd.DataFrame) -> dict[str, Any]:
    return {"queued": int(len(eligible))}


def lock(conn: Connection, batch: pd.DataFrame) -> None:
    """Both users of every pair: a merge of one of them waits for this batch, or this batch for it
    (its re-check then finds the user gone: USER_NOT_FOUND)."""
    lock_users(conn, pd.concat([batch["from_id"], batch["to_id"]]).astype("int64"))


def queue_pairs(conn: Connection, pairs: pd.DataFrame, parameters: DuplicatesParameters, run: JobRun) -> dict[str, Any]:
    """Add the batch's pairs to the review queue as proposed."""
    rows = [{"from_user_id": int(p.from_id), "to_user_id": int(p.to_id), "from_primary_id": p.from_primary_id,
             "to_primary_id": p.to_primary_id, "probability": float(p.probability), "evidence": p.evidence,
             "merge_refusal": p.merge_refusal, "merge_round": int(p.merge_round)}
            for p in pairs.itertuples(index=False)]
    return {"queued": add_proposed(conn, rows, run.run_id, run.now)}


def export_rows(decided: pd.DataFrame) -> pd.DataFrame:
    """The export's columns: from_user,to_user first (what `merge --pairs` reads), then EXPORT_COLUMNS
    (tasks/library/review_queue.py). Pairs rejected before are not in it (they are not proposed)."""
    frame = decided.rename(columns={"from_primary_id": "from_user", "to_primary_id": "to_user"})
    frame["cluster"] = frame["cluster"].astype("int64")
    frame["probability"] = frame["probability"].map(lambda p: f"{p:.4f}")
    frame["evidence"] = [e if t is None or t != t else f"{e} (linked through {t})"
                         for e, t in zip(frame["evidence"], frame["linked_through"])]
    return frame[["from_user", "to_user", *EXPORT_COLUMNS]]


def write_export(path: str, decided: pd.DataFrame) -> None:
    export_rows(decided).to_csv(Path(path).expanduser(), index=False, quoting=csv.QUOTE_MINIMAL)


def shape_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The contract's counts: users_scanned, pairs_found (From -> To pairs proposed, N-1 per cluster of
    N records), clusters, queued; `pairs_scored` the scorer's pairs at or above P before clustering."""
    found = _SCANS.get(summary["run_id"])
    skipped = dict(summary.pop("skipped"))
    queued = summary.pop("queued", 0)
    if found is not None and found.rejected_before:
        skipped[REJECTED_BEFORE] = skipped.get(REJECTED_BEFORE, 0) + found.rejected_before
    proposals = found.proposals if found is not None else pd.DataFrame(columns=["cluster"])
    return {
        **summary,
        "skipped": dict(sorted(skipped.items())),
        "users_scanned": found.users_scanned if found else 0,
        "pairs_found": int(len(proposals)),
        "clusters": int(proposals["cluster"].nunique()),
        "queued": queued,
        "pairs_scored": found.pairs_scored if found else 0,
    }


def top_pairs_section(done: pd.DataFrame) -> list[str]:
    """The best pairs with their evidence, for the report (the Prefect UI's artifact)."""
    heading = f"## Top pairs (of {len(done):,}), with their evidence"
    if done.empty:
        return [f"{heading}\n_none_"]
    best = done.sort_values(["probability", "pair_no"], ascending=[False, True]).head(TOP_PAIRS_IN_REPORT)
    rows = [(p.pair, f"{p.probability:.4f}", p.merge_round, p.direction, p.merge_refusal or "",
             p.evidence + (f" (linked through {p.linked_through})" if isinstance(p.linked_through, str) else ""))
            for p in best.itertuples(index=False)]
    return [f"{heading}\n" + table(rows, ("From -> To", "probability", "round", "To because", "merge would refuse",
                                           "evidence"))]
