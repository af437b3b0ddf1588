"""Undo a merge in the database: the pairs of a merge run with their undo records (tasks/db/undo_record.py),
what undoing each would move back, and the undo itself, pair by pair inside a batch's transaction.
Which pairs may be undone is decided in tasks/unmerge/rules.py."""
from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Connection, func, insert, select, update

from tasks.db import schema
from tasks.db.row_locks import lock_users
from tasks.db.sql import sql_for
from tasks.db.statements import in_list
from tasks.db.undo_record import PREFERRED_COLUMNS, RECORD_KINDS, decode_row, moved_ids, table_of
from tasks.engine.definition import JobRun
from tasks.engine.parameters import named
from tasks.engine.records import record_events
from tasks.engine.report import table as markdown_table
from tasks.errors import InvalidInput
from tasks.library.undo_retention import expiry_cutoff, retention_days
from tasks.reasons import (ALREADY_UNMERGED, CHANGED_SINCE_SELECTION, IDENTIFIER_TAKEN, PRIMARY_ID_TAKEN,
                           TO_USER_CHANGED, UNDO_EXPIRED)
from tasks.segments import KINDS, part
from tasks.unmerge.parameters import UnmergeParameters
from tasks.unmerge.rules import decide_unmerge, moved_back_totals

MERGE_JOB = "merge-users"
PAIRS_PER_SELECT = 500
PER_PAIR_REPORT_LIMIT = 50


# ---------------------------------------------------------------- the merge run and its pairs

def merged_pairs(conn: Connection, run_id: str) -> pd.DataFrame:
    """The pairs the merge run merged: from_primary_id, to_primary_id, to_user_id."""
    rows = []
    for to_user_id, details in conn.execute(sql_for(conn, "unmerge/select_merged_pairs"), {"run_id": run_id}):
        d = json.loads(details or "{}")
        rows.append((d.get("from"), d.get("to"), int(to_user_id)))
    return pd.DataFrame.from_records(rows, columns=["from_primary_id", "to_primary_id", "to_user_id"])


def validate(conn: Connection, parameters: UnmergeParameters) -> None:
    """The run must be a real Merge Users run, and each pair asked for one of its pairs."""
    run_flag, run_id = named("merge_run_id"), parameters.merge_run_id
    run = conn.execute(sql_for(conn, "unmerge/select_merge_run"), {"run_id": run_id}).first()
    if run is None:
        raise InvalidInput(f"{run_flag} {run_id!r}: no such job run (see `history --job {MERGE_JOB}`)")
    if run.job != MERGE_JOB:
        raise InvalidInput(f"{run_flag} {run_id!r} is a {run.job} run, not a {MERGE_JOB} run")
    if run.dry_run:
        raise InvalidInput(f"{run_flag} {run_id!r} was a dry run of {MERGE_JOB}: it merged nothing to undo")
    pairs = set(merged_pairs(conn, run_id)["from_primary_id"])
    unknown = [p for p in parameters.from_users if p not in pairs]
    if unknown:
        raise InvalidInput(f"{named('from_users')} {', '.join(repr(p) for p in unknown)}: not the From user of "
                           f"a pair merged by run {run_id!r}")


# ---------------------------------------------------------------- select

def _records(frame: pd.DataFrame, column: str) -> list[dict[str, Any]]:
    return [json.loads(v) if isinstance(v, str) else {} for v in frame[column]]


def select_pairs(conn: Connection, parameters: UnmergeParameters, run: JobRun,
           keys: Sequence[Any] | None = None) -> Iterator[pd.DataFrame]:
    """Each pair of the run with its undo record, who holds what it needs back now, and what undoing it
    would move back (`back_*`), chunk by chunk of pairs."""
    pairs = merged_pairs(conn, parameters.merge_run_id)
    if parameters.from_users:
        pairs = pairs[pairs["from_primary_id"].isin(parameters.from_users)]
    if keys is not None:
        pairs = pairs[pairs["from_primary_id"].isin([str(k) for k in keys])]
    days = retention_days(conn)
    for start in range(0, max(len(pairs), 1), PAIRS_PER_SELECT):
        chunk = pairs.iloc[start:start + PAIRS_PER_SELECT].reset_index(drop=True)
        yield _pair_facts(conn, parameters.merge_run_id, chunk, days)


def _pair_facts(conn: Connection, run_id: str, chunk: pd.DataFrame, days: int) -> pd.DataFrame:
    frame = chunk.copy()
    frame["pair"] = frame["from_primary_id"] + " -> " + frame["to_primary_id"]
    frame["retention_days"] = days
    from_pids = [str(p) for p in frame["from_primary_id"]] or ["-"]
    undo = pd.DataFrame.from_records(
        [tuple(r) for r in conn.execute(sql_for(conn, "unmerge/select_undo_records"),
                                        {"run_id": run_id, "from_primary_ids": from_pids})],
        columns=["undo_id", "from_primary_id", "from_user_id", "undo_to_user_id", "merged_at", "record", "kept",
                 "unmerged_run_id"])
    frame = frame.merge(undo, on="from_primary_id", how="left")
    frame["has_record"] = frame["record"].map(lambda v: isinstance(v, str))
    frame["unmerged"] = frame["unmerged_run_id"].map(lambda v: isinstance(v, str))
    frame["undo_id"] = frame["undo_id"].astype("Int64")
    frame["from_user_id"] = frame["from_user_id"].astype("Int64")

    ids = [int(i) for i in pd.concat([frame["to_user_id"], frame["from_user_id"].dropna()])] or [-1]
    holders = conn.execute(sql_for(conn, "unmerge/select_users"), {"ids": ids, "primary_ids": from_pids}).all()
    live_by_id = {int(u.id): u.primary_id for u in holders if u.purged_at is None}
    all_ids = {int(u.id) for u in holders}
    taken_pids = {u.primary_id for u in holders if u.primary_id is not None}
    frame["to_present"] = [live_by_id.get(int(t)) == p for t, p in zip(frame["to_user_id"], frame["to_primary_id"])]
    frame["primary_id_taken"] = frame["from_primary_id"].isin(taken_pids)
    frame["from_id_free"] = [pd.notna(i) and int(i) not in all_ids for i in frame["from_user_id"]]

    records = _records(frame, "record")
    moved = [moved_ids(rec, kept) for rec, kept in zip(records, _records(frame, "kept"))]
    frame["moved"] = [json.dumps(m) for m in moved]
    # The identifiers the undo re-creates (those the merge did not move) must be free.
    wanted = [{(r["id_type"], r["value"]) for r in rec.get("rows", {}).get("identifiers", [])
               if r["id"] not in set(mv.get("identifiers", []))} for rec, mv in zip(records, moved)]
    values = sorted({v for w in wanted for _, v in w}) or ["-"]
    held = {tuple(r) for r in conn.execute(sql_for(conn, "unmerge/select_identifiers"), {"values": values})}
    frame["identifier_taken"] = [bool(w & held) for w in wanted]

    # What moves back: the moved rows the To user still holds (with whatever happened to them since).
    back: dict[str, list[int]] = {k: [0] * len(frame) for k in KINDS}
    back_fees: list[list[int]] = [[] for _ in range(len(frame))]
    for kind in RECORD_KINDS:
        table = table_of(kind)
        wanted_ids = sorted({i for mv in moved for i in mv.get(kind, [])})
        if not wanted_ids:
            continue
        owner = table.c.proxy_for_primary_id if kind == "proxied_by" else table.c.user_id
        now = dict(conn.execute(select(table.c.id, owner).where(in_list(table.c.id)), {"ids": wanted_ids}).all())
        for n, (mv, to_id, to_pid) in enumerate(zip(moved, frame["to_user_id"], frame["to_primary_id"])):
            expect = to_pid if kind == "proxied_by" else int(to_id)
            ids = [i for i in mv.get(kind, []) if now.get(i) == expect]
            back[kind][n] = len(ids)
            if kind == "fees":
                back_fees[n] = ids
    all_fees = sorted({i for f in back_fees for i in f})
    if all_fees:
        tx = schema.fee_transactions
        per_fee = dict(conn.execute(select(tx.c.fee_id, func.count()).where(in_list(tx.c.fee_id))
                                    .group_by(tx.c.fee_id), {"ids": all_fees}).all())
        back["fee_transactions"] = [sum(per_fee.get(i, 0) for i in f) for f in back_fees]
    for kind in KINDS:
        frame[f"back_{kind}"] = pd.Series(back[kind], index=frame.index, dtype="int64")
    return frame


def decide(frame: pd.DataFrame, parameters: UnmergeParameters, run: JobRun) -> pd.DataFrame:
    days = int(frame["retention_days"].iloc[0]) if len(frame) else 0
    return decide_unmerge(frame, expiry_cutoff(run.now, days))


def count(eligible: pd.DataFrame) -> dict[str, Any]:
    return {"unmerged": int(eligible["from_primary_id"].nunique()), "moved_back": moved_back_totals(eligible)}


def lock(conn: Connection, batch: pd.DataFrame) -> None:
    """The To users of the batch's pairs: nothing moves to or from them while their pairs are undone."""
    lock_users(conn, batch["to_user_id"].dropna().astype("int64"))


# ---------------------------------------------------------------- apply

def _free(conn: Connection, table, row_id: int) -> bool:
    return conn.execute(select(table.c.id).where(table.c.id == row_id)).first() is None


def _proxy_row_wanted(conn: Connection, values: dict[str, Any]) -> bool:
    """A proxy row the merge deleted comes back once, when both its users are there. Between the From
    users of two pairs it is in both records: the first undo re-creates it only if the other From user
    is back already; otherwise the other's undo does."""
    proxies, users, undo = schema.user_proxies, schema.users, schema.merge_undo
    if _free(conn, users, values["user_id"]):
        return False      # the user who acted is gone since
    if conn.execute(select(proxies.c.id).where(proxies.c.user_id == values["user_id"],
                                               proxies.c.proxy_for_primary_id == values["proxy_for_primary_id"])
                    ).first() is not None:
        return False      # there already
    target = values["proxy_for_primary_id"]
    if conn.execute(select(users.c.id).where(users.c.primary_id == target)).first() is not None:
        return True
    # Nobody has the primary id: a From user of a merge not undone yet gets it back with its own undo.
    return conn.execute(select(undo.c.id).where(undo.c.from_primary_id == target,
                                                undo.c.unmerged_run_id.is_(None))).first() is None


def _undo_pair(conn: Connection, p: Any, run: JobRun) -> tuple[int, dict[str, int], dict[str, int]]:
    """Re-create the From user and its rows, move back what moved; returns (its row id, moved back,
    re-created) per kind."""
    record, moved = json.loads(p.record), json.loads(p.moved)
    users = schema.users
    user = decode_row(users, record["user"])
    if not p.from_id_free:
        user.pop("id")
    from_id = int(conn.execute(insert(users).values(**user).returning(users.c.id)).scalar_one())
    to_id, to_pid, from_pid = int(p.to_user_id), p.to_primary_id, p.from_primary_id
    moved_back = dict.fromkeys(KINDS, 0)
    recreated = dict.fromkeys(KINDS, 0)
    for kind in RECORD_KINDS:
        table = table_of(kind)
        moved_here = set(moved.get(kind, []))
        restore = (*PREFERRED_COLUMNS.get(kind, ()), *(("segment_type",) if part(kind).segment_typed else ()))
        for row in record["rows"].get(kind, []):
            values = decode_row(table, row)
            if row["id"] in moved_here:
                if kind == "proxied_by":
                    statement = (update(table).where(table.c.id == row["id"], table.c.proxy_for_primary_id == to_pid)
                                 .values(proxy_for_primary_id=from_pid))
                else:
                    statement = (update(table).where(table.c.id == row["id"], table.c.user_id == to_id)
                                 .values(user_id=from_id, **{c: values[c] for c in restore}))
                moved_back[kind] += conn.execute(statement).rowcount or 0
                continue
            if kind != "proxied_by":
                values["user_id"] = from_id
            if table is schema.user_proxies and not _proxy_row_wanted(conn, values):
                continue
            if not _free(conn, table, values["id"]):
                values.pop("id")
            conn.execute(insert(table).values(**values))
            recreated[kind] += 1
    moved_back["fee_transactions"] = int(p.back_fee_transactions)
    return from_id, moved_back, recreated


def unmerge(conn: Connection, pairs: pd.DataFrame, parameters: UnmergeParameters, run: JobRun) -> dict[str, Any]:
    """Undo the batch's pairs, each whole, in the batch's one transaction."""
    totals = dict.fromkeys(KINDS, 0)
    events = []
    for p in pairs.itertuples(index=False):
        from_id, moved_back, recreated = _undo_pair(conn, p, run)
        expected = {k: int(getattr(p, f"back_{k}")) for k in KINDS}
        if moved_back != expected:
            raise RuntimeError(f"pair {p.pair}: moved back {moved_back}, the preview said {expected}; "
                               "batch rolled back")
        if conn.execute(sql_for(conn, "unmerge/mark_unmerged"),
                        {"undo_id": int(p.undo_id), "run_id": run.run_id, "now": run.now}).rowcount != 1:
            raise RuntimeError(f"pair {p.pair} was undone by another run meanwhile; batch rolled back")
        for k, v in moved_back.items():
            totals[k] += v
        events.append({"user_id": from_id, "details": {
            "from": p.from_primary_id, "to": p.to_primary_id, "merge_run_id": parameters.merge_run_id,
            "moved_back": {k: v for k, v in moved_back.items() if v},
            "recreated": {k: v for k, v in recreated.items() if v}}})
    record_events(conn, run, "USER_UNMERGED", events)
    return {"unmerged": len(pairs), "moved_back": totals}


# ---------------------------------------------------------------- summary and report

def shape_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The contract's unmerge counts: `failed` by reason; `skipped` for pairs already undone and pairs
    left alone because they changed between preview and undo; `pairs` every pair asked for."""
    reasons = dict(summary.pop("skipped"))
    skipped = {k: reasons.pop(k) for k in (ALREADY_UNMERGED, CHANGED_SINCE_SELECTION) if k in reasons}
    unmerged, moved_back = summary.pop("unmerged", 0), summary.pop("moved_back", {})
    return {
        **summary,
        "skipped": skipped,
        "pairs": unmerged + sum(skipped.values()) + sum(reasons.values()),
        "unmerged": unmerged,
        "failed": reasons,
        "moved_back": moved_back,
    }


REASONS = {
    ALREADY_UNMERGED: "an earlier unmerge run undid the pair; it is not undone twice",
    TO_USER_CHANGED: "the To user was purged or merged into another user since: undo that first, if it can be",
    UNDO_EXPIRED: "the merge is older than the undo retention period (`undo-retention show`), or its undo "
                  "record was removed: it can no longer be undone",
    PRIMARY_ID_TAKEN: "another user has the From user's primary id now",
    IDENTIFIER_TAKEN: "another user holds an identifier the From user would get back",
    CHANGED_SINCE_SELECTION: "the To user or what would move back changed between preview and undo; rerun",
}


def per_pair_section(done: pd.DataFrame) -> list[str]:
    """What moved back for each undone pair (for runs small enough to read), and what the reasons mean."""
    heading = "## Per pair"
    legend = "## Reasons\n" + markdown_table(sorted(REASONS.items()), ("reason", "meaning"))
    if done.empty:
        return [f"{heading}\n_none_", legend]
    if len(done) > PER_PAIR_REPORT_LIMIT:
        return [f"{heading}\n_{len(done):,} pairs: totals only (the job events USER_UNMERGED hold every pair)._",
                legend]
    kinds = [k for k in KINDS if done[f"back_{k}"].sum() > 0]
    rows = [(p["pair"], str(p["merged_at"]), *(int(p[f"back_{k}"]) for k in kinds))
            for _, p in done.sort_values("from_primary_id").iterrows()]
    return [f"{heading}\n_Moved back to the From user:_\n\n" + markdown_table(rows, ("pair", "merged", *kinds)),
            legend]
