"""`export`: users in the Alma format (see tasks/alma/format.py), with their loans, requests and fees,
as JSON (the default) or as Alma's XML (`--format xml`, see tasks/alma/xml.py).

Users are read in chunks by id and each chunk's child rows with one `IN` query per table, so memory
stays flat however many users the library holds, and output starts before the last user is read.
"""
from __future__ import annotations

import json
from collections import defaultdict
from typing import Any, Iterator, TextIO

from sqlalchemy import Connection, Engine, select

from tasks.alma import xml as alma_xml
from tasks.alma.format import CONTACT_INFO, SEGMENTS, USER_FIELDS, Segment, code_tables_used, export_plan, to_json
from tasks.library.codes import descriptions
from tasks.db.engine import read_connection
from tasks.errors import UserNotFound
from tasks.db.schema import users

CHUNK = 1000
FORMATS = ("json", "xml")
USER_EXPORT = export_plan(USER_FIELDS)
_PLANS: dict[str, tuple] = {}


def _plan(segment: Segment) -> tuple:
    plan = _PLANS.get(segment.name)
    if plan is None:
        plan = _PLANS[segment.name] = export_plan(segment.fields)
    return plan


def export_users(engine: Engine, primary_ids: list[str] | None, out: TextIO, fmt: str = "json") -> int:
    """One id: one pretty JSON object (XML: one `<user>`). Several ids, or None for every user: JSON
    Lines (XML: `<users>`, one `<user>` a line). Purged users are not exported. Returns the number
    of users written."""
    if fmt not in FORMATS:
        from tasks.errors import InvalidInput
        raise InvalidInput(f"unknown export format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    with read_connection(engine) as conn:
        descs = {table: descriptions(conn, table) for table in code_tables_used()}
        if primary_ids is not None and len(primary_ids) == 1:
            ids = _resolve(conn, primary_ids)
            (document,) = _documents(conn, ids, descs)
            if fmt == "xml":
                alma_xml.write_user(document, out)
            else:
                out.write(json.dumps(document, ensure_ascii=False, indent=2, default=_number) + "\n")
            return 1
        chunks = _all_user_ids(conn) if primary_ids is None else _chunks(_resolve(conn, primary_ids))
        if fmt == "xml":
            return alma_xml.write_users((_documents(conn, ids, descs) for ids in chunks), out)
        written = 0
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_number).encode
        for ids in chunks:
            lines = [dumps(d) for d in _documents(conn, ids, descs)]
            out.write("\n".join(lines) + "\n")
            out.flush()
            written += len(lines)
        return written


def _number(value: Any) -> Any:
    # A number kept from a field outside the spec (read back exactly as a Decimal).
    from decimal import Decimal
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"cannot write a {type(value).__name__}")


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
    result = conn.execute(select(users).where(users.c.id.in_(ids)))
    keys = list(result.keys())
    rows = {r["id"]: r for r in (dict(zip(keys, t)) for t in result)}
    items = {segment.name: _items(conn, segment, ids, descs) for segment in SEGMENTS}
    contact_segments = [s.name for s in SEGMENTS if s.under == CONTACT_INFO]
    top_segments = [s.name for s in SEGMENTS if s.under is None]
    documents = []
    for user_id in ids:
        document = to_json(rows[user_id], USER_EXPORT, descs)
        contact = {name: items[name].get(user_id, []) for name in contact_segments}
        kept = document.get(CONTACT_INFO)
        if kept:
            contact.update(kept)  # what contact_info carried beyond its three lists
        document[CONTACT_INFO] = contact
        for name in top_segments:
            document[name] = items[name].get(user_id, [])
        documents.append(document)
    return documents


def _items(conn: Connection, segment: Segment, owner_ids: list[int],
           descs: dict[str, dict[str, str]]) -> dict[int, list[dict]]:
    """The JSON items of `segment` grouped by owner id, in the order they were loaded."""
    table = segment.table
    owner = table.c[segment.parent_column]
    rows: list[Any] = []
    for chunk in _chunks(owner_ids):
        result = conn.execute(select(table).where(owner.in_(chunk)).order_by(owner, table.c.id))
        keys = list(result.keys())
        rows += [dict(zip(keys, t)) for t in result]
    nested = {
        child.name: _items(conn, child, [r["id"] for r in rows], descs) for child in segment.children
    }
    plan = _plan(segment)
    grouped: dict[int, list[dict]] = defaultdict(list)
    for row in rows:
        item = to_json(row, plan, descs)
        for child in segment.children:
            item[child.name] = nested[child.name].get(row["id"], [])
        grouped[row[segment.parent_column]].append(item)
    return grouped
