"""Merge Users: fold duplicate patron records (From) into the records to keep (To), pair by pair.

Each pair is validated first (both users exist and differ, neither is in another pair of the run,
neither is protected, the From user is a Patron only, INTERNAL -> EXTERNAL states copy-as-internal);
a pair that fails is reported with its reason and the others go on. A merge moves all loans,
requests and fees (with their transactions) and the chosen segments to the To user under the clash
rules in sql/merge/, then deletes the From user completely. Dry run unless `dry_run` is false.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from prefect import flow
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from tasks.db.row_locks import lock_users
from tasks.db.engine import get_engine, read_connection
from tasks.errors import InvalidInput
from tasks.library.init_db import init_db
from tasks.engine.definition import CHANGED_SINCE_SELECTION, BatchJob, JobRun
from tasks.engine.parameters import JobParameters
from tasks.engine.records import flow_run_namer, record_events
from tasks.merge.rules import (KINDS, SEGMENTS, decide_merge, moved_totals, pair_facts, pair_table,
                               segment_kinds)
from tasks.engine.params import parse_int, validation_message
from tasks.engine.report import table
from tasks.engine.runner import run_job
from tasks.engine.selection import read_chunks
from tasks.db.sql import sql_for

JOB = "merge-users"
Segment = Literal["contacts", "identifiers", "notes", "blocks", "statistics", "attachments", "roles", "proxies"]
PAIRS_PER_SELECT = 500          # keeps each IN list well under SQLite's bound-variable limit
PER_PAIR_REPORT_LIMIT = 50      # above this, the report gives totals only (the job events keep every pair)
CSV_COLUMNS = ("from_user", "to_user", "copy_as_internal")
TRUE_WORDS, FALSE_WORDS = {"true", "yes", "y", "1"}, {"false", "no", "n", "0"}


class MergePair(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_user: str = Field(min_length=1, description="Primary id of the duplicate record; it is deleted.")
    to_user: str = Field(min_length=1, description="Primary id of the record to keep; it receives everything.")
    copy_as_internal: bool | None = Field(
        default=None, description="This pair's copy-as-internal; empty means the run's setting.",
    )

    @field_validator("from_user", "to_user", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value


class MergeParameters(JobParameters):
    """Merge Users. Dry run unless `dry_run` is false."""

    pairs: list[MergePair] = Field(
        default_factory=list, description="Pairs to merge: From (the duplicate, deleted) into To (kept).",
    )
    pairs_file: str | None = Field(
        default=None,
        description="A CSV file of pairs (columns from_user,to_user and optional copy_as_internal), "
                    "read where the flow runs; its pairs follow `pairs`.",
    )
    segments: list[Segment] = Field(
        default_factory=lambda: list(SEGMENTS),
        description="Segments copied to the To user (others are deleted with the From user); 'all' for every "
                    "one. Loans, requests and fees always move.",
    )
    copy_as_internal: bool | None = Field(
        default=None,
        description="Copied segments become Internal (true) or External (false). Required for a pair that "
                    "merges an INTERNAL user into an EXTERNAL one; empty means of the To user's account type.",
    )
    _file_pairs: list[MergePair] = PrivateAttr(default_factory=list)

    @field_validator("segments", mode="before")
    @classmethod
    def _expand_all(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            value = [s.strip() if isinstance(s, str) else s for s in value]
            if "all" in value:
                return list(SEGMENTS)
            return list(dict.fromkeys(value))
        return value

    def all_pairs(self) -> list[tuple[str, str, bool | None]]:
        return [(p.from_user, p.to_user, p.copy_as_internal) for p in [*self.pairs, *self._file_pairs]]


def read_pairs_csv(path: str) -> list[MergePair]:
    """Pairs from a CSV file; any problem names the file, the line and the value."""
    file = Path(path)
    if not file.is_file():
        raise InvalidInput(f"--pairs: no such file {path!r}")
    try:
        with file.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip() for h in reader.fieldnames or []]
            missing = [c for c in CSV_COLUMNS[:2] if c not in header]
            unknown = [c for c in header if c not in CSV_COLUMNS]
            if missing or unknown:
                problem = "; ".join(filter(None, [f"missing column(s) {', '.join(missing)}" if missing else "",
                                                  f"unknown column(s) {', '.join(unknown)}" if unknown else ""]))
                raise InvalidInput(f"pairs file {path!r}: {problem}; expected columns "
                                   "from_user,to_user and optionally copy_as_internal")
            reader.fieldnames = header
            pairs = [_csv_pair(path, reader.line_num, row) for row in reader if any((v or "").strip() for v in row.values())]
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"pairs file {path!r} is not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise InvalidInput(f"pairs file {path!r}: {exc}") from None
    if not pairs:
        raise InvalidInput(f"pairs file {path!r} holds no pairs")
    return pairs


def _csv_pair(path: str, line: int, row: dict[str, str | None]) -> MergePair:
    where = f"pairs file {path!r}, line {line}"
    if None in row:
        raise InvalidInput(f"{where}: more values than columns")
    values = {k: (v or "").strip() for k, v in row.items()}
    for column in CSV_COLUMNS[:2]:
        if not values.get(column):
            raise InvalidInput(f"{where}: {column} is empty")
    flag = values.get("copy_as_internal", "").lower()
    if flag and flag not in TRUE_WORDS | FALSE_WORDS:
        raise InvalidInput(f"{where}: copy_as_internal must be true or false (or empty), "
                           f"got {values['copy_as_internal']!r}")
    return MergePair(from_user=values["from_user"], to_user=values["to_user"],
                     copy_as_internal=None if not flag else flag in TRUE_WORDS)


def with_file_pairs(parameters: MergeParameters) -> MergeParameters:
    """The parameters with the pairs file read; refuses a run with no pairs at all."""
    if parameters.pairs_file:
        parameters._file_pairs = read_pairs_csv(parameters.pairs_file)
    if not parameters.all_pairs():
        raise InvalidInput("no pairs to merge: give --from and --to, or --pairs FILE.csv")
    return parameters


# ---------------------------------------------------------------- the job


def select_pairs(conn, parameters: MergeParameters, run: JobRun, keys=None):
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


def lock_pair_users(conn, batch: pd.DataFrame) -> None:
    """Both users of every pair, in one id-ordered lock."""
    ids = pd.concat([batch["from_id"], batch["to_id"]]).dropna().astype("int64")
    lock_users(conn, ids)


# (statement, kind its row count is) per segment, in the order they must run
_SEGMENT_STATEMENTS: dict[str, list[tuple[str, str | None]]] = {
    "contacts": [("merge/unprefer_addresses", None), ("merge/move_addresses", "addresses"),
                 ("merge/unprefer_emails", None), ("merge/move_emails", "emails"),
                 ("merge/unprefer_phones", None), ("merge/move_phones", "phones")],
    "identifiers": [("merge/move_identifiers", "identifiers")],
    "notes": [("merge/move_notes", "notes")],
    "blocks": [("merge/move_blocks", "blocks")],
    "statistics": [("merge/move_statistics", "statistics")],
    "attachments": [("merge/move_attachments", "attachments")],
    "roles": [("merge/move_roles", "roles")],
    "proxies": [("merge/move_proxy_for", "proxy_for"), ("merge/repoint_proxied_by", "proxied_by")],
}
_ALWAYS = [("merge/move_loans", "loans"), ("merge/move_requests", "requests"), ("merge/move_fees", "fees")]


def merge_batch(conn, pairs: pd.DataFrame, parameters: MergeParameters, run: JobRun) -> dict[str, Any]:
    """Merge the batch's pairs: one statement per kind for all of them, then delete the From users."""
    conn.execute(sql_for(conn, "merge/create_pair_map"))
    conn.execute(sql_for(conn, "merge/fill_pair_map"), [
        {"from_id": int(p.from_id), "to_id": int(p.to_id), "from_primary_id": p.from_primary_id,
         "to_primary_id": p.to_primary_id, "segment_type": p.segment_type}
        for p in pairs.itertuples(index=False)
    ])
    statements = _ALWAYS + [s for segment in SEGMENTS if segment in parameters.segments
                            for s in _SEGMENT_STATEMENTS[segment]]
    moved = dict.fromkeys(KINDS, 0)
    for name, kind in statements:
        rows = conn.execute(sql_for(conn, name)).rowcount
        if kind:
            moved[kind] = rows
    # Transactions are not updated: they follow their fee. Their count is the selection's, re-read
    # under this batch's lock.
    moved["fee_transactions"] = int(pairs["moved_fee_transactions"].sum())
    expected = moved_totals(pairs)
    if moved != expected:
        # The rules and the SQL disagree: roll the batch back rather than report a merge nobody previewed.
        raise RuntimeError(f"merge moved {moved}, the preview said {expected}; batch rolled back")
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
    conn.execute(sql_for(conn, "merge/drop_pair_map"))
    return {"merged": len(pairs), "moved": moved}


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


MERGE = BatchJob(
    name=JOB,
    key="pair_no",
    label="pair",
    select=select_pairs,
    decide=decide,
    count=count,
    apply=merge_batch,
    lock=lock_pair_users,
    fingerprint=("from_id", "to_id", "from_protected", "to_protected", "from_account_type", "to_account_type",
                 "from_non_patron_roles", "segment_type", *(f"moved_{k}" for k in KINDS)),
    shape_summary=shape_summary,
    report_sections=per_pair_section,
)


@flow(name=JOB, flow_run_name=flow_run_namer("merge"), log_prints=True, validate_parameters=True)
def merge_users(parameters: MergeParameters) -> dict[str, Any]:
    """Merge Users (dry run unless parameters.dry_run is false)."""
    return run_job(MERGE, with_file_pairs(parameters), title="Merge Users", unit_name="pairs")


# ---------------------------------------------------------------- command line


def parse_segments(value: str) -> list[str]:
    names = [s.strip() for s in (value or "").split(",") if s.strip()]
    unknown = [s for s in names if s not in (*SEGMENTS, "all")]
    if unknown or not names:
        shown = ", ".join(repr(s) for s in unknown) if unknown else repr(value)
        raise InvalidInput(f"--segments: unknown segment {shown}; valid segments: {', '.join(SEGMENTS)}, all")
    return list(SEGMENTS) if "all" in names else list(dict.fromkeys(names))


def check_single_pair(from_user: str, to_user: str) -> None:
    """One pair named on the command line is a parameter like any other: merging a user into itself
    or naming a user who does not exist is refused (exit 2) before anything is recorded. In a pairs
    file the same pair is a failed pair and the others go on, so that a file can be rerun after a crash."""
    if from_user == to_user:
        raise InvalidInput(f"--from and --to both name {from_user!r}: a user cannot be merged into itself")
    engine = get_engine()
    init_db(engine)
    with read_connection(engine) as conn:
        found = {row.primary_id for row in conn.execute(sql_for(conn, "merge/select_users"),
                                                        {"primary_ids": [from_user, to_user]})}
    missing = [f"{flag} {pid!r}" for flag, pid in (("--from", from_user), ("--to", to_user)) if pid not in found]
    if missing:
        raise InvalidInput(f"no such user: {', '.join(missing)} (no user with that primary id, or already purged or merged)")


def merge_parameters_from_cli(args) -> MergeParameters:
    one_pair = args.from_user is not None or args.to_user is not None
    if one_pair and (args.from_user is None or args.to_user is None):
        raise InvalidInput("--from and --to go together: give both")
    if one_pair and args.pairs:
        raise InvalidInput("give either --from/--to or --pairs FILE.csv, not both")
    if not one_pair and not args.pairs:
        raise InvalidInput("no pairs to merge: give --from and --to, or --pairs FILE.csv")
    if args.pairs:
        read_pairs_csv(args.pairs)  # a malformed file is refused before any flow run starts
    values: dict[str, Any] = {
        "dry_run": not args.confirm,
        "segments": parse_segments(args.segments),
        "copy_as_internal": args.copy_as_internal,
        "require_approval": args.require_approval,
        "pairs": [{"from_user": args.from_user, "to_user": args.to_user}] if one_pair else [],
        "pairs_file": args.pairs,
    }
    if args.batch_size is not None:
        values["batch_size"] = parse_int("--batch-size", args.batch_size, minimum=1)
    try:
        parameters = MergeParameters(**values)
    except ValidationError as exc:
        raise InvalidInput(validation_message(exc, CLI_FLAGS)) from None
    if one_pair:
        check_single_pair(args.from_user, args.to_user)
    return parameters


CLI_FLAGS = {"pairs.0.from_user": "--from", "pairs.0.to_user": "--to", "batch_size": "--batch-size",
             "segments": "--segments", "pairs_file": "--pairs"}
