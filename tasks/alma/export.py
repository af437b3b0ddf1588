"""`export`: users in the Alma format (see tasks/alma/format.py), with their loans, requests and fees,
as JSON (the default) or as Alma's XML (`--format xml`, see tasks/alma/xml.py).

Users are read in chunks by id and each chunk's child rows with one `IN` query per table, so memory
stays flat however many users the library holds, and output starts before the last user is read.
"""
from __future__ import annotations

import json
from collections import defaultdict
from typing import Any, Iterator, NamedTuple, TextIO

from sqlalchemy import Connection, Engine, Table, bindparam, select, type_coerce
from sqlalchemy.types import NullType

from tasks.alma import jsonio
from tasks.alma import xml as alma_xml
from tasks.alma.nogc import cyclic_gc_paused
from tasks.alma.format import CONTACT_INFO, SEGMENTS, USER_FIELDS, ExportPlan, Segment, code_tables_used
from tasks.alma.format import export_plan, to_json
from tasks.library.codes import descriptions
from tasks.db.engine import read_connection
from tasks.errors import UserNotFound
from tasks.db.schema import users

CHUNK = 1000
FORMATS = ("json", "xml")


class _Reading(NamedTuple):
    """How one table is read: its rows (the columns as the driver gives them) by owner, and its
    export plan."""

    by_owners: Any   # the rows whose owner is IN :owners, in owner and load order
    by_range: Any    # the rows whose owner is BETWEEN :low AND :high, in owner and load order
    plan: ExportPlan
    id: int          # the position of `id`
    owner: int       # the position of the owner's id (user_id, fee_id)


def _rows_of(conn: Connection, reading: _Reading, owner_ids: list[int]) -> list:
    """The rows of `owner_ids`, one query per table per chunk: the range of ids when the chunk is dense
    (`export --all` reads users in id order), else the list of ids (compiled once, not per chunk)."""
    rows: list = []
    for chunk in _chunks(owner_ids):
        low, high = min(chunk), max(chunk)
        if high - low < 2 * len(chunk):
            found = conn.execute(reading.by_range, {"low": low, "high": high}).all()
            if high - low + 1 > len(chunk):  # owners in the range that were not asked for
                wanted, at = set(chunk), reading.owner
                found = [r for r in found if r[at] in wanted]
            rows += found
        else:
            rows += conn.execute(reading.by_owners, {"owners": chunk}).all()
    return rows


_READINGS: dict[str, _Reading] = {}


def _reading(table: Table, fields: tuple, owner_column: str) -> _Reading:
    """Every column of `table`, raw: the driver's values without SQLAlchemy's result processing
    (format.to_json reads SQLite's stored text of dates and times and its 0/1 booleans; a datetime
    object per value cost a third of an export)."""
    reading = _READINGS.get(table.name)
    if reading is None:
        names = [c.name for c in table.c]
        owner = table.c[owner_column]
        query = select(*(type_coerce(c, NullType()).label(c.name) for c in table.c)).order_by(owner, table.c.id)
        reading = _READINGS[table.name] = _Reading(
            query.where(owner.in_(bindparam("owners", expanding=True))),
            query.where(owner.between(bindparam("low"), bindparam("high"))),
            export_plan(fields, names), names.index("id"), names.index(owner_column))
    return reading


def export_users(engine: Engine, primary_ids: list[str] | None, out: TextIO, fmt: str = "json") -> int:
    """One id: one pretty JSON object (XML: one `<user>`). Several ids, or None for every user: JSON
    Lines (XML: `<users>`, one `<user>` a line). Purged users are not exported. Returns the number
    of users written."""
    if fmt not in FORMATS:
        from tasks.errors import InvalidInput
        raise InvalidInput(f"unknown export format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    with read_connection(engine) as conn, cyclic_gc_paused():
        descs = {table: descriptions(conn, table) for table in code_tables_used()}
        if primary_ids is not None and len(primary_ids) == 1:
            ids = _resolve(conn, primary_ids)
            (document,) = _documents(conn, ids, descs)
            if fmt == "xml":
                alma_xml.write_user(document, out)
            else:
                out.write(json.dumps(document, ensure_ascii=False, indent=2, default=jsonio.default) + "\n")
            return 1
        chunks = _all_user_ids(conn) if primary_ids is None else _chunks(_resolve(conn, primary_ids))
        if fmt == "xml":
            return alma_xml.write_users((_documents(conn, ids, descs) for ids in chunks), out)
        written = 0
        for ids in chunks:
            documents = _documents(conn, ids, descs)
            out.write(jsonio.dumps_lines(documents))
            out.flush()
            written += len(documents)
        return written


def _chunks(values: list, size: int = CHUNK) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _resolve(conn: Connection, primary_ids: list[str]) -> list[int]:
    """The users' ids in the order given (each once); refuses before any output if one is missing."""
    wanted = list(dict.fromkeys(primary_ids))
    found: dict[str, int] = {}
    for chunk in _chunks(wanted):
        query = select(users.c.primary_id, users.c.id).where(
            users.c.primary_id.in_(chunk), users.c.purged_at.is_(None))
        found.update((pid, uid) for pid, uid in conn.execute(query))
    missing = [pid for pid in wanted if pid not in found]
    if missing:
        shown = ", ".join(repr(pid) for pid in missing[:20]) + (f" and {len(missing) - 20} more" if len(missing) > 20 else "")
        raise UserNotFound(f"no user with primary_id {shown}" if len(missing) == 1 else f"no users with primary_id {shown}")
    return [found[pid] for pid in wanted]


def _all_user_ids(conn: Connection) -> Iterator[list[int]]:
    # Keyset pagination: each chunk is an index range scan, however deep into the table.
    last = None
    while True:
        query = select(users.c.id).where(users.c.purged_at.is_(None)).order_by(users.c.id).limit(CHUNK)
        if last is not None:
            query = query.where(users.c.id > last)
        ids = list(conn.execute(query).scalars())
        if not ids:
            return
        yield ids
        last = ids[-1]


def _documents(conn: Connection, ids: list[int], descs: dict[str, dict[str, str]]) -> list[dict]:
    """The Alma user objects for `ids`, in that order."""
    reading = _reading(users, USER_FIELDS, "id")
    rows = {r[reading.id]: r for r in _rows_of(conn, reading, ids)}
    items = {segment.name: _items(conn, segment, ids, descs) for segment in SEGMENTS}
    contact_segments = [(s.name, items[s.name]) for s in SEGMENTS if s.under == CONTACT_INFO]
    top_segments = [(s.name, items[s.name]) for s in SEGMENTS if s.under is None]
    plan = reading.plan
    documents = []
    for user_id in ids:
        document = to_json(rows[user_id], plan, descs)
        contact = {name: grouped.get(user_id, []) for name, grouped in contact_segments}
        kept = document.get(CONTACT_INFO)
        if kept:
            contact.update(kept)  # what contact_info carried beyond its three lists
        document[CONTACT_INFO] = contact
        for name, grouped in top_segments:
            document[name] = grouped.get(user_id, [])
        documents.append(document)
    return documents


def _items(conn: Connection, segment: Segment, owner_ids: list[int],
           descs: dict[str, dict[str, str]]) -> dict[int, list[dict]]:
    """The JSON items of `segment` grouped by owner id, in the order they were loaded: one query per
    table per chunk of owners."""
    reading = _reading(segment.table, segment.fields, segment.parent_column)
    id_at, owner_at, plan = reading.id, reading.owner, reading.plan
    rows = _rows_of(conn, reading, owner_ids)
    nested = [(child.name, _items(conn, child, [r[id_at] for r in rows], descs)) for child in segment.children]
    grouped: dict[int, list[dict]] = defaultdict(list)
    for row in rows:
        item = to_json(row, plan, descs)
        for name, children in nested:
            item[name] = children.get(row[id_at], [])
        grouped[row[owner_at]].append(item)
    return grouped
