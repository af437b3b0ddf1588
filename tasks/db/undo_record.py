"""The undo record of a merge (table merge_undo): written by Merge Users for every pair it merges, read
by Undo a merge. It lives below both jobs so that neither imports the other.

Per pair it holds
- `record`: the From user as it was just before the merge: its users row and every row of every part
  of its record (tasks/segments.py), whole, as JSON (`{"user": {...}, "rows": {kind: [{...}, ...]}}`);
  `proxied_by` are the rows of other users who act for it (user_proxies naming its primary id);
- `kept`: which of those rows the merge did not move to the To user (`{kind: [row id, ...]}`): they were
  deleted with the From user (segments not chosen, clashing items); every other row of `record` moved.
What the clash rules changed is in the two together: a moved row's preferred flags and segment type
before the merge are the record's, the rows not duplicated are the ones kept.

Both are built by the database, one INSERT ... SELECT and one UPDATE per merge batch (the pairs in the
batch's merge_pair_map), so writing them costs the merge a few set-based statements, not a Python loop
over rows. Dates and times are ISO strings, binary values hex (`\\x`-prefixed from PostgreSQL), booleans
true/false (PostgreSQL) or 1/0 (SQLite); `decode_row` turns them back into the column's values.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (Boolean, Connection, Date, DateTime, LargeBinary, String, Table, Text, cast, delete, func,
                        insert, literal, select, update)

from tasks.db import schema
from tasks.db.statements import pair_map
from tasks.segments import PARTS, part

# Every part of a user record; proxied_by rows are other users' that name the From user's primary id.
RECORD_KINDS: tuple[str, ...] = tuple(p.kind for p in PARTS)
# What a merge changes on a row it moves, besides the owner: restored by an undo.
PREFERRED_COLUMNS = {"addresses": ("preferred",), "emails": ("preferred",), "phones": ("preferred", "preferred_sms")}


def table_of(kind: str) -> Table:
    return schema.metadata.tables[part(kind).table]


class _Json:
    """The JSON functions in the connection's dialect."""

    def __init__(self, dialect: str):
        self.postgresql = dialect == "postgresql"

    def object(self, pairs: list[tuple[str, Any]]):
        args = [x for key, value in pairs for x in (cast(literal(key), String), value)]
        return func.json_build_object(*args) if self.postgresql else func.json_object(*args)

    def nest(self, value):
        # SQLite: a value from a subquery loses its JSON subtype; json() gives it back, so it nests.
        return value if self.postgresql else func.json(value)

    def hexed(self, column):
        return func.lower(func.hex(column))

    def text(self, value):
        return cast(value, Text) if self.postgresql else value


def _row_object(j: _Json, table: Table):
    """The whole row as a JSON object: PostgreSQL's row_to_json (its C path is several times faster
    than naming every column: profiled on a 2,000-pair batch), SQLite's json_object of every column."""
    if j.postgresql:
        return func.row_to_json(table.table_valued())
    return j.object([(c.name, j.hexed(c) if isinstance(c.type, LargeBinary) else c) for c in table.columns])


def _owned(kind: str, table: Table, from_id, from_primary_id):
    """The condition that a row of `kind` belongs to the From user (its row id and primary id columns)."""
    if kind == "proxied_by":
        return table.c.proxy_for_primary_id == from_primary_id
    return table.c.user_id == from_id


def _array(j: _Json, value, table: Table, where):
    if j.postgresql:
        agg = func.coalesce(func.json_agg(value), func.json_build_array())
    else:
        agg = func.json_group_array(value)
    return j.nest(select(agg).select_from(table).where(where).scalar_subquery())


def write_records(conn: Connection, run_id: str, merged_at: dt.datetime) -> None:
    """Before the merge moves anything: one merge_undo row per pair of the batch with its record."""
    j = _Json(conn.dialect.name)
    users = schema.users
    rows = j.object([(kind, _array(j, _row_object(j, table_of(kind)), table_of(kind),
                                   _owned(kind, table_of(kind), pair_map.c.from_id, pair_map.c.from_primary_id)))
                     for kind in RECORD_KINDS])
    record = j.object([("user", _row_object(j, users)), ("rows", rows)])
    query = (select(literal(run_id, String), pair_map.c.from_primary_id, pair_map.c.from_id,
                    pair_map.c.to_primary_id, pair_map.c.to_id, literal(merged_at, DateTime), j.text(record))
             .select_from(pair_map.join(users, users.c.id == pair_map.c.from_id)))
    undo = schema.merge_undo
    conn.execute(insert(undo).from_select(
        ["merge_run_id", "from_primary_id", "from_user_id", "to_primary_id", "to_user_id", "merged_at", "record"],
        query))


def write_kept(conn: Connection, run_id: str) -> None:
    """After the merge's moves, before the From users are deleted: which rows they still hold."""
    j = _Json(conn.dialect.name)
    undo = schema.merge_undo
    kept = j.object([(kind, _array(j, table_of(kind).c.id, table_of(kind),
                                   _owned(kind, table_of(kind), undo.c.from_user_id, undo.c.from_primary_id)))
                     for kind in RECORD_KINDS])
    conn.execute(update(undo).where(undo.c.merge_run_id == run_id,
                                    undo.c.from_user_id.in_(select(pair_map.c.from_id)))
                 .values(kept=j.text(kept)))


def moved_ids(record: dict[str, Any], kept: dict[str, Any]) -> dict[str, list[int]]:
    """Per kind, the ids of the record's rows that moved to the To user."""
    return {kind: [r["id"] for r in record.get("rows", {}).get(kind, []) if r["id"] not in set(kept.get(kind, []))]
            for kind in RECORD_KINDS}


def forget_rows(conn: Connection, user_ids: Sequence[int], rows: Mapping[str, Sequence[int]]) -> int:
    """Delete the undo records that name any of `rows` ({kind: row ids}) as moved by a merge into one of
    `user_ids`; returns how many. Anonymise loan history calls it in the batch that unlinks those rows:
    a record naming an unlinked loan would tell again whose it was, and such a merge can no longer be
    undone exactly anyway (unmerge then says UNDO_EXPIRED). Records of merges that moved none of them stay."""
    undo = schema.merge_undo
    wanted = {kind: set(ids) for kind, ids in rows.items() if ids}
    if not wanted or not user_ids:
        return 0
    doomed = []
    for chunk_start in range(0, len(user_ids), 5_000):
        chunk = [int(i) for i in user_ids[chunk_start:chunk_start + 5_000]]
        found = conn.execute(select(undo.c.id, undo.c.record, undo.c.kept)
                             .where(undo.c.to_user_id.in_(chunk), undo.c.record.is_not(None))).all()
        for undo_id, record, kept in found:
            moved = moved_ids(json.loads(record), json.loads(kept or "{}"))
            if any(wanted.get(kind, set()) & set(ids) for kind, ids in moved.items()):
                doomed.append(undo_id)
    if doomed:
        conn.execute(delete(undo).where(undo.c.id.in_(doomed)))
    return len(doomed)


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
                value = bytes.fromhex(value.removeprefix("\\x"))   # PostgreSQL writes bytea as \x...
            elif isinstance(column.type, Boolean):
                value = bool(value)
        out[name] = value
    return out
