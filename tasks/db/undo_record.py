"""The undo record of a merge (table merge_undo): written by Merge Users for every pair it merges, read
by Undo a merge. It lives below both jobs so that neither imports the other.

Per pair it holds
- `record`: the From user as it was just before the merge: its users row and every row of every part
  of its record (tasks/segments.py), whole, as JSON (`{"user": {...}, "rows": {kind: [{...}, ...]}}`);
  `proxied_by` are the rows of other users who act for it (user_proxies naming its primary id);
- `moved`: which of those rows the merge moved to the To user (`{kind: [row id, ...]}`); the others
  were deleted with the From user (segments not chosen, clashing items).
What the clash rules changed is in the two together: a moved row's preferred flags and segment type
before the merge are the record's, the rows not duplicated are the ones not moved.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Boolean, Connection, Date, DateTime, LargeBinary, Table, insert, select

from tasks.db import schema
from tasks.db.statements import in_list
from tasks.segments import PARTS, part

# Every part of a user record; proxied_by rows are other users' that name the From user's primary id.
RECORD_KINDS: tuple[str, ...] = tuple(p.kind for p in PARTS)
# What a merge changes on a row it moves, besides the owner: restored by an undo.
PREFERRED_COLUMNS = {"addresses": ("preferred",), "emails": ("preferred",), "phones": ("preferred", "preferred_sms")}


def table_of(kind: str) -> Table:
    return schema.metadata.tables[part(kind).table]


def encode_value(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def _encoders(table: Table) -> list[tuple[str, bool]]:
    """(column name, whether its values need encoding for JSON): dates, times and bytes do."""
    return [(c.name, isinstance(c.type, (Date, DateTime, LargeBinary))) for c in table.columns]


def encode_rows(table: Table, rows: Iterable[Any]) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts; only the columns that need it are converted (a merge batch encodes
    every row of thousands of users: per-value checks on every column cost as much as the merge)."""
    columns = _encoders(table)
    return [{name: (encode_value(value) if convert and value is not None else value)
             for (name, convert), value in zip(columns, row)} for row in rows]


def decode_row(table: Table, values: dict[str, Any]) -> dict[str, Any]:
    """A row of the record as the values to insert into `table`, each of its column's type."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        column = table.c[name]
        if value is not None:
            if isinstance(column.type, DateTime):
                value = dt.datetime.fromisoformat(value)
            elif isinstance(column.type, Date):
                value = dt.date.fromisoformat(value)
            elif isinstance(column.type, LargeBinary):
                value = base64.b64decode(value)
            elif isinstance(column.type, Boolean):
                value = bool(value)
        out[name] = value
    return out


def _rows_of(conn: Connection, kind: str, from_ids: list[int], from_primary_ids: list[str], *columns):
    """The rows of the From users in the part `kind` (all their columns, or the ones given)."""
    table = table_of(kind)
    query = select(*columns) if columns else select(table)
    if kind == "proxied_by":
        query = query.where(in_list(table.c.proxy_for_primary_id, "primary_ids"))
    else:
        query = query.where(in_list(table.c.user_id))
    return conn.execute(query, {"ids": from_ids, "primary_ids": from_primary_ids}).all()


def snapshot(conn: Connection, pairs: Sequence[tuple[int, str]]) -> dict[int, dict[str, Any]]:
    """The record of each From user (from_id, from_primary_id) as it is now: one statement per part for
    the whole batch. Call before the merge moves anything."""
    from_ids = [int(i) for i, _ in pairs]
    primary_ids = [str(p) for _, p in pairs]
    by_primary = {str(p): int(i) for i, p in pairs}
    records: dict[int, dict[str, Any]] = {i: {"user": None, "rows": {k: [] for k in RECORD_KINDS}} for i in from_ids}
    users = schema.users
    for row in encode_rows(users, conn.execute(select(users).where(in_list(users.c.id)), {"ids": from_ids})):
        records[int(row["id"])]["user"] = row
    for kind in RECORD_KINDS:
        for row in encode_rows(table_of(kind), _rows_of(conn, kind, from_ids, primary_ids)):
            owner = by_primary[row["proxy_for_primary_id"]] if kind == "proxied_by" else int(row["user_id"])
            records[owner]["rows"][kind].append(row)
    return records


def not_moved(conn: Connection, pairs: Sequence[tuple[int, str]]) -> set[tuple[str, int]]:
    """(kind, row id) of the rows still the From users' after the merge's moves (before their deletion)."""
    from_ids = [int(i) for i, _ in pairs]
    primary_ids = [str(p) for _, p in pairs]
    return {(kind, int(row_id)) for kind in RECORD_KINDS
            for (row_id,) in _rows_of(conn, kind, from_ids, primary_ids, table_of(kind).c.id)}


def write(conn: Connection, run_id: str, merged_at: dt.datetime, pairs: Iterable[dict[str, Any]],
          records: dict[int, dict[str, Any]], kept: set[tuple[str, int]]) -> None:
    """One merge_undo row per pair (from_id, from_primary_id, to_id, to_primary_id), in one statement."""
    rows = []
    for p in pairs:
        record = records[int(p["from_id"])]
        moved = {kind: [r["id"] for r in record["rows"][kind] if (kind, r["id"]) not in kept]
                 for kind in RECORD_KINDS}
        rows.append({
            "merge_run_id": run_id, "from_primary_id": p["from_primary_id"], "from_user_id": int(p["from_id"]),
            "to_primary_id": p["to_primary_id"], "to_user_id": int(p["to_id"]), "merged_at": merged_at,
            "record": json.dumps(record, sort_keys=True, separators=(",", ":")),
            "moved": json.dumps(moved, sort_keys=True, separators=(",", ":")),
        })
    if rows:
        conn.execute(insert(schema.merge_undo), rows)
