"""`load FILE...`: users in the Alma format (see tasks/alma_format.py) into the library database.

Each file is read and validated completely before anything is written, then written in one
transaction: a file loads entirely or not at all. Rows go in table by table with executemany, so a
file of 100,000 users is a few dozen statements, not a million.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Iterator

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, Engine, Table, select
from sqlalchemy.exc import DataError, IntegrityError

from tasks.alma.format import SEGMENTS, USER_FIELDS, Segment, UserModel, items_of, to_row
from tasks.library.codes import code_values, ensure_codes
from tasks.db.engine import write_transaction
from tasks.errors import InvalidInput
from tasks.db.schema import users

MAX_REPORTED_PROBLEMS = 20
LOOKUP_CHUNK = 2000  # values per `IN (...)`: well inside SQLite's (32766) and PostgreSQL's parameter limits


def load_files(engine: Engine, paths: list[str]) -> dict:
    """Load each file in its own transaction; returns how many of each thing were loaded."""
    totals: Counter = Counter({"files": 0, "users": 0, **{name: 0 for name in _count_names()}, "codes_added": 0})
    loaded: list[str] = []
    for path in paths:
        try:
            counts = load_file(engine, path)
        except InvalidInput as exc:
            if loaded:
                raise InvalidInput(f"{exc}\n(loaded before this error: {', '.join(loaded)})") from None
            raise
        totals.update(counts)
        totals["files"] += 1
        loaded.append(path)
    return dict(totals)


def load_file(engine: Engine, path: str) -> dict:
    records = read_records(path)
    batch = validate_records(path, records)
    try:
        with write_transaction(engine) as conn:
            check_against_database(conn, path, batch)
            return write_batch(conn, batch)
    except (IntegrityError, DataError) as exc:
        # Validation covers what we know of; this is a concurrent load or a rule only the database has.
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise InvalidInput(f"{path}: the database refused the file ({detail}); nothing was loaded") from None


# ------------------------------------------------------------------ reading


@dataclass
class Record:
    label: str   # "record 3" in a JSON array, "line 7" in JSON Lines
    data: Any

    def where(self) -> str:
        pid = self.data.get("primary_id") if isinstance(self.data, dict) else None
        return f"{self.label} (primary_id {pid!r})" if isinstance(pid, str) and pid else self.label


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number this format accepts")


# Amounts must stay exact: a JSON number becomes a Decimal, never a float. One decoder for every
# line of a JSON Lines file (json.loads with options would build a new one per line).
_parse = json.JSONDecoder(parse_float=Decimal, parse_constant=_refuse_constant).decode


def read_records(path: str) -> list[Record]:
    """The user records of a JSON array, an Alma `{"user": [...]}` object, or JSON Lines."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InvalidInput(f"{path}: line {line}: not valid UTF-8 (byte {exc.start}: {exc.reason})") from None
    if not text.strip():
        return []
    try:
        document = _parse(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data" and text.lstrip().startswith("{"):
            return list(_json_lines(path, text))
        raise InvalidInput(f"{path}: not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except ValueError as exc:
        raise InvalidInput(f"{path}: {exc}") from None
    if isinstance(document, list):
        return [Record(f"record {i}", item) for i, item in enumerate(document, start=1)]
    if isinstance(document, dict) and "user" in document and "primary_id" not in document:
        users_ = document["user"]
        if isinstance(users_, dict):
            users_ = [users_]
        if not isinstance(users_, list):
            raise InvalidInput(f'{path}: "user" must be a list of users')
        return [Record(f"record {i}", item) for i, item in enumerate(users_, start=1)]
    if isinstance(document, dict):
        return [Record("line 1" if "\n" not in text.strip() else "record 1", document)]
    raise InvalidInput(f'{path}: expected a list of users, an object {{"user": [...]}} or JSON Lines')


def _json_lines(path: str, text: str) -> Iterator[Record]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield Record(f"line {number}", _parse(line))
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path}: line {number}: not valid JSON at column {exc.colno}: {exc.msg}") from None
        except ValueError as exc:
            raise InvalidInput(f"{path}: line {number}: {exc}") from None


# ------------------------------------------------------------------ validation


@dataclass
class Rows:
    """The rows for one table, each with the index of its owner among the parent rows."""

    segment: Segment | None
    rows: list[dict] = field(default_factory=list)
    owners: list[int] = field(default_factory=list)
    children: dict[str, "Rows"] = field(default_factory=dict)


@dataclass
class Batch:
    users: Rows
    records: list[Record]
    codes: dict[str, dict[str, str | None]]
    # segment name ("user" for users) -> library-wide unique key -> (record, field path)
    keys: dict[str, dict[tuple, tuple[Record, str]]]


class _Problems:
    def __init__(self, path: str):
        self.path = path
        self.lines: list[str] = []
        self.more = 0

    def add(self, record: Record, where: str, message: str) -> None:
        if len(self.lines) < MAX_REPORTED_PROBLEMS:
            self.lines.append(f"{self.path}: {record.where()}: {where}: {message}")
        else:
            self.more += 1

    def raise_if_any(self) -> None:
        if self.lines:
            if self.more:
                self.lines.append(f"{self.path}: ... and {self.more} more problems")
            self.lines.append(f"{self.path}: nothing was loaded")
            raise InvalidInput("\n".join(self.lines))


def _field_path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_PYDANTIC_WORDS = {
    "missing": "is required",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "list_type": "must be a list",
}


def _message(error: dict) -> str:
    return _PYDANTIC_WORDS.get(error["type"], error["msg"])


def validate_records(path: str, records: list[Record]) -> Batch:
    """Check every record and turn the file into rows; raises InvalidInput naming record and field."""
    problems = _Problems(path)
    user_rows = Rows(None)
    codes: dict[str, dict[str, str | None]] = {}
    keys: dict[str, dict[tuple, tuple[Record, str]]] = {"user": {}}
    for index, record in enumerate(records):
        if not isinstance(record.data, dict):
            problems.add(record, "user", f"must be a JSON object, got {type(record.data).__name__}")
            continue
        try:
            user = UserModel.model_validate(record.data)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                problems.add(record, _field_path(error["loc"]) or "user", _message(error))
            continue
        seen = keys["user"]
        if (user.primary_id,) in seen:
            problems.add(record, "primary_id", f"{user.primary_id!r} appears twice in the file "
                                               f"(also {seen[(user.primary_id,)][0].label})")
        else:
            seen[(user.primary_id,)] = (record, "primary_id")
        for where, message in _check_user(user, record, keys):
            problems.add(record, where, message)
        user_rows.rows.append(to_row(user, USER_FIELDS, codes))
        user_rows.owners.append(index)
        _collect(user, len(user_rows.rows) - 1, SEGMENTS, user_rows.children, codes)
    problems.raise_if_any()
    return Batch(user_rows, records, codes, keys)


def _collect(owner: BaseModel, owner_index: int, segments: tuple[Segment, ...], into: dict[str, Rows],
             codes: dict) -> None:
    for segment in segments:
        rows = into.setdefault(segment.name, Rows(segment))
        for item in items_of(owner, segment):
            rows.rows.append(to_row(item, segment.fields, codes))
            rows.owners.append(owner_index)
            if segment.children:
                _collect(item, len(rows.rows) - 1, segment.children, rows.children, codes)


def _check_user(user: BaseModel, record: Record, keys: dict) -> Iterator[tuple[str, str]]:
    """Rules across fields and records: unique keys and the fee ledger."""
    for segment in SEGMENTS:
        path = f"{segment.under}.{segment.name}" if segment.under else segment.name
        within_user: dict[tuple, int] = {}
        for i, item in enumerate(items_of(user, segment)):
            if segment.unique:
                key = tuple(_key_value(getattr(item, name)) for name in segment.unique)
                seen = keys.setdefault(segment.name, {}).get(key)
                if seen:
                    yield (f"{path}[{i}].{segment.unique[-1]}", f"{_describe(segment.unique, key)} appears "
                                                                f"twice in the file (also {seen[0].where()} {seen[1]})")
                else:
                    keys[segment.name][key] = (record, f"{path}[{i}].{segment.unique[-1]}")
            if segment.unique_per_user:
                key = tuple(_key_value(getattr(item, name)) for name in segment.unique_per_user)
                if key in within_user:
                    yield (f"{path}[{i}]", f"{_describe(segment.unique_per_user, key)} is already "
                                           f"in {path}[{within_user[key]}]")
                within_user.setdefault(key, i)
            if segment.name == "fee":
                yield from _check_ledger(item, f"{path}[{i}]")


def _key_value(value: Any) -> Any:
    return getattr(value, "value", value) if value is not None else ""


def _describe(names: tuple[str, ...], key: tuple) -> str:
    if len(key) == 1:
        return repr(key[0])
    return " ".join(f"{n} {v!r}" for n, v in zip(names, key))


def _check_ledger(fee: BaseModel, where: str) -> Iterator[tuple[str, str]]:
    paid = sum((t.amount for t in fee.transaction or ()), Decimal("0.00"))
    if fee.balance != fee.original_amount - paid:
        yield (f"{where}.balance", f"{fee.balance} does not match the ledger: original_amount "
                                   f"{fee.original_amount} minus transactions {paid} is {fee.original_amount - paid}")


# ------------------------------------------------------------------ the database


def _unique_columns(segment: Segment) -> list[str]:
    by_name = {f.name: f.column_name for f in segment.fields}
    return [by_name[name] for name in segment.unique]


def check_against_database(conn: Connection, path: str, batch: Batch) -> None:
    """Refuse primary ids, identifiers and loan/request/fee ids the library already holds."""
    problems = _Problems(path)
    checks: list[tuple[str, tuple[str, ...], Table, list[str]]] = [("user", ("primary_id",), users, ["primary_id"])]
    checks += [(s.name, s.unique, s.table, _unique_columns(s)) for s in SEGMENTS if s.unique]
    for segment_name, names, table, columns in checks:
        wanted = batch.keys.get(segment_name) or {}
        for key in _existing(conn, table, columns, list(wanted)):
            record, where = wanted[key]
            problems.add(record, where, f"{_describe(names, key)} is already in the library database")
    problems.raise_if_any()


def _existing(conn: Connection, table: Table, columns: list[str], keys: list[tuple]) -> list[tuple]:
    cols = [table.c[c] for c in columns]
    found: list[tuple] = []
    for start in range(0, len(keys), LOOKUP_CHUNK):
        chunk = keys[start:start + LOOKUP_CHUNK]
        # Each column IN its own values rather than (a, b) IN ((..), ..): PostgreSQL plans a row-value
        # list as an OR chain, seconds per chunk; this stays an index scan. Exact keys are matched here.
        query = select(*cols).where(*(col.in_(list({k[n] for k in chunk})) for n, col in enumerate(cols)))
        wanted = set(chunk)
        found += [key for key in map(tuple, conn.execute(query)) if key in wanted]
    return found


def write_batch(conn: Connection, batch: Batch) -> dict:
    counts: Counter = Counter({"users": len(batch.users.rows), "codes_added": 0})
    for table_name, found in sorted(batch.codes.items()):
        counts["codes_added"] += len(set(found) - code_values(conn, table_name))
        ensure_codes(conn, table_name, found)
    user_ids = _insert(conn, users, batch.users.rows, want_ids=True)
    _insert_children(conn, batch.users.children, user_ids, counts)
    return dict(counts)


def _insert_children(conn: Connection, children: dict[str, Rows], parent_ids: list[int], counts: Counter) -> None:
    for rows in children.values():
        segment = rows.segment
        for row, owner in zip(rows.rows, rows.owners):
            row[segment.parent_column] = parent_ids[owner]
        ids = _insert(conn, segment.table, rows.rows, want_ids=bool(segment.children))
        counts[segment.count_as] += len(rows.rows)
        if segment.children:
            _insert_children(conn, rows.children, ids, counts)


def _insert(conn: Connection, table: Table, rows: list[dict], want_ids: bool) -> list[int]:
    if not rows:
        return []
    if want_ids:
        # One executemany that hands back the new ids in the order of `rows` (SQLAlchemy's
        # "insertmanyvalues"), so children link to their owners without a read-back query.
        statement = table.insert().returning(table.c.id, sort_by_parameter_order=True)
        return list(conn.execute(statement, rows).scalars())
    conn.execute(table.insert(), rows)
    return []


def _count_names() -> list[str]:
    names: list[str] = []
    stack = list(SEGMENTS)
    while stack:
        segment = stack.pop(0)
        names.append(segment.count_as)
        stack += segment.children
    return names
