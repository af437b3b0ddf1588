"""`load FILE...`: users in the Alma format (see tasks/alma/format.py) into the library database.

Each file loads in one transaction: entirely or not at all. Records are read and checked a chunk at a
time (JSON Lines and XML `<users>` are streamed, so memory stays flat in the file's size) and each
chunk's rows go in table by table with executemany; a problem anywhere rolls the whole file back (the
rest of the file is still checked, so the message lists up to 20 problems at once).

A file that is an Alma loans, fees or requests response (GET /users/{id}/loans, .../fees,
.../requests, or one fee) is not a file of users: `load --attach-to PRIMARY_ID FILE` attaches its
items to that user, already in the library; without it the file is refused with a message saying so.
"""
from __future__ import annotations

import io
import json
import queue
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from operator import itemgetter
from typing import Any, Callable, Iterator

from sqlalchemy import BigInteger, Boolean, Connection, Engine, Integer, LargeBinary, Table, bindparam, func, select, text
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from tasks.alma import jsonio
from tasks.alma.nogc import cyclic_gc_paused
from tasks.alma import xml as alma_xml
from tasks.alma.format import CONTACT_INFO, CREDIT, SEGMENTS, USER_PLAN, Segment, plan_for, to_row
from tasks.alma.format import code_tables_used
from tasks.library.codes import descriptions, ensure_codes
from tasks.db.engine import write_transaction
from tasks.errors import InvalidInput
from tasks.db.schema import users

MAX_REPORTED_PROBLEMS = 20
LOOKUP_CHUNK = 2000  # values per `IN (...)`: well inside SQLite's (32766) and PostgreSQL's parameter limits
CHUNK = 5000         # records checked and written at a time

# The sub-resource responses Alma sends beside users: list name -> (what it is, what an item is).
SUB_RESOURCES = {
    "item_loan": ("a loans response (GET /almaws/v1/users/{id}/loans)", "loan"),
    "fee": ("a fees response (GET /almaws/v1/users/{id}/fees)", "fee"),
    "user_request": ("a requests response (GET /almaws/v1/users/{id}/requests)", "request"),
}
SEGMENT_BY_NAME = {s.name: s for s in SEGMENTS}


def load_files(engine: Engine, paths: list[str], attach_to: str | None = None) -> dict:
    """Load each file in its own transaction; returns how many of each thing were loaded.
    With `attach_to`, each file is a loans, fees or requests response for that user."""
    totals: Counter = Counter({"files": 0, "users": 0, **{name: 0 for name in _count_names()}, "codes_added": 0})
    loaded: list[str] = []
    for path in paths:
        try:
            counts = load_file(engine, path, attach_to)
        except InvalidInput as exc:
            if loaded:
                raise InvalidInput(f"{exc}\n(loaded before this error: {', '.join(loaded)})") from None
            raise
        totals.update(counts)
        totals["files"] += 1
        loaded.append(path)
    return dict(totals)


def load_file(engine: Engine, path: str, attach_to: str | None = None) -> dict:
    with cyclic_gc_paused():
        return _load_file(engine, path, attach_to)


def _load_file(engine: Engine, path: str, attach_to: str | None) -> dict:
    source = open_source(path)
    if attach_to is None and source.sub_resource:
        what, item = SUB_RESOURCES[source.sub_resource]
        raise InvalidInput(
            f"{path}: this is {what}, not a file of users: its {item}s belong to one user. Load the user "
            f"first, then attach them to it: python -m flows load --attach-to PRIMARY_ID {path}")
    if attach_to is not None and not source.sub_resource:
        raise InvalidInput(f"{path}: --attach-to {attach_to!r} takes a loans, fees or requests response; "
                           f"this file holds users: load it without --attach-to")
    loader = _Loader(path)
    try:
        with write_transaction(engine) as conn:
            loader.start(conn)
            if attach_to is not None:
                loader.attach(conn, attach_to, source)
            else:
                with _Writer(conn) as write:
                    for number, chunk in enumerate(_chunks(source.records, CHUNK)):
                        work = loader.check(number, chunk)
                        if work is not None:
                            write(lambda work=work: work(conn))
            loader.problems.raise_if_any()
            return dict(loader.counts)
    except (IntegrityError, DataError) as exc:
        # Validation covers what we know of; this is a concurrent load or a rule only the database has.
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise InvalidInput(f"{path}: the database refused the file ({detail}); nothing was loaded") from None


def _chunks(records: Iterator, size: int) -> Iterator[list]:
    chunk: list = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# ------------------------------------------------------------------ reading


# Amounts must stay exact: a JSON number is read exactly (jsonio), never rounded through a float.
_parse = jsonio.loads
_BOM = b"\xef\xbb\xbf"


@dataclass
class Source:
    """What a file holds: user records (label, data), or the items of one sub-resource."""

    records: Iterator[tuple[str, Any]]
    sub_resource: str | None = None   # "item_loan", "fee" or "user_request"
    items: list = field(default_factory=list)


def open_source(path: str) -> Source:
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    with handle:
        start = handle.read(4096)
    lead = start.lstrip(b"\xef\xbb\xbf \t\r\n")
    if lead.startswith(b"<"):
        return _xml_source(path)
    first_line = _first_line(path)
    if first_line is not None:
        return Source(_json_lines(path))
    return _document_source(path)


def _first_line(path: str) -> Any:
    """The first line parsed, when the file is JSON Lines (a user object on its first line)."""
    with open(path, "rb") as handle:
        for raw in handle:
            if not raw.strip():
                continue
            try:
                value = _parse(raw.decode("utf-8-sig"))
            except (UnicodeDecodeError, ValueError):
                return None
            return value if isinstance(value, dict) and "primary_id" in value else None
    return None


def _json_lines(path: str) -> Iterator[tuple[str, Any]]:
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(_BOM):
                raw = raw[3:]
            if raw.isspace() or not raw:
                continue
            try:
                yield f"line {number}", _parse(raw)
            except UnicodeDecodeError as exc:
                raise InvalidInput(f"{path}: line {number}: not valid UTF-8 (byte {exc.start}: {exc.reason})") from None
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"{path}: line {number}: not valid JSON at column {exc.colno}: {exc.msg}") from None
            except ValueError as exc:
                raise InvalidInput(f"{path}: line {number}: {exc}") from None


def _document_source(path: str) -> Source:
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InvalidInput(f"{path}: line {line}: not valid UTF-8 (byte {exc.start}: {exc.reason})") from None
    if not text.strip():
        return Source(iter(()))
    try:
        document = _parse(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}: not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except ValueError as exc:
        raise InvalidInput(f"{path}: {exc}") from None
    return classify(path, document)


def classify(path: str, document: Any) -> Source:
    """Users (a list, {"user": [...]}, one user) or a sub-resource response (loans, fees, requests,
    or one fee / loan / request object)."""
    if isinstance(document, list):
        return Source(_numbered(document))
    if not isinstance(document, dict):
        raise InvalidInput(f'{path}: expected a list of users, an object {{"user": [...]}} or JSON Lines')
    if "primary_id" not in document:
        if "user" in document:
            users_ = document["user"]
            if isinstance(users_, dict):
                users_ = [users_]
            if not isinstance(users_, list):
                raise InvalidInput(f'{path}: "user" must be a list of users')
            return Source(_numbered(users_))
        for name in SUB_RESOURCES:
            if name in document:
                items = document[name]
                items = [] if items is None else [items] if isinstance(items, dict) else items
                if not isinstance(items, list):
                    raise InvalidInput(f'{path}: "{name}" must be a list')
                return Source(iter(()), name, items)
        single = _single_item(document)
        if single:
            return Source(iter(()), single, [document])
    return Source(iter([("record 1", document)]))


def _single_item(document: dict) -> str | None:
    if "loan_id" in document:
        return "item_loan"
    if "request_id" in document:
        return "user_request"
    if "id" in document and ("original_amount" in document or "balance" in document):
        return "fee"
    return None


def _numbered(items: list) -> Iterator[tuple[str, Any]]:
    for i, item in enumerate(items, start=1):
        yield f"record {i}", item


def _xml_source(path: str) -> Source:
    root, records = alma_xml.read_users(path)
    if root in alma_xml.SUB_RESOURCE_ROOTS:
        name = alma_xml.SUB_RESOURCE_ROOTS[root]
        items = [data for _, data in records]
        return Source(iter(()), name, items)
    return Source(records)


# ------------------------------------------------------------------ checking and writing


@dataclass
class Rows:
    """The rows for one table, each with the index of its owner among the parent rows."""

    segment: Segment | None
    rows: list[dict] = field(default_factory=list)
    owners: list[int] = field(default_factory=list)
    children: dict[str, "Rows"] = field(default_factory=dict)


class _Problems:
    """The problems found, in the file's order: those of checking the records (found chunk by chunk)
    and those of the database (a key already in the library), which a background writer may find
    while a later chunk is being checked; the message lists a chunk's checks before its database
    problems, as a load that did one chunk after the other would."""

    CHECK, DATABASE = 0, 1

    def __init__(self, path: str):
        self.path = path
        self.found: list[list] = [[], []]   # per source: (chunk, sequence, line), the first few of each
        self.counts = [0, 0]
        self.first_chunk = None              # the first chunk with a problem: nothing after it is written
        self.lock = threading.Lock()         # the loading thread and the writer add problems

    def add(self, where_record: str, where: str, message: str, chunk: int = 0, source: int = CHECK) -> None:
        with self.lock:
            if self.first_chunk is None or chunk < self.first_chunk:
                self.first_chunk = chunk
            if len(self.found[source]) < MAX_REPORTED_PROBLEMS:
                self.found[source].append((chunk, source, len(self.found[source]),
                                           f"{self.path}: {where_record}: {where}: {message}"))
            self.counts[source] += 1

    def __bool__(self) -> bool:
        return self.first_chunk is not None

    def before(self, chunk: int) -> bool:
        """Whether a chunk up to `chunk` has a problem (then `chunk` is not written)."""
        return self.first_chunk is not None and self.first_chunk <= chunk

    def raise_if_any(self) -> None:
        if self:
            lines = [line for *_, line in sorted(self.found[0] + self.found[1])][:MAX_REPORTED_PROBLEMS]
            more = sum(self.counts) - len(lines)
            if more:
                lines.append(f"{self.path}: ... and {more} more problems")
            lines.append(f"{self.path}: nothing was loaded")
            raise InvalidInput("\n".join(lines))


class _Writer:
    """Runs each chunk's database work in order: on PostgreSQL in one background thread, so the server
    takes a chunk (in its own process, on another core) while the next one is read and checked here;
    on SQLite inline (its driver hands the interpreter lock back and forth once per row, so a thread
    beside the checks would wait on it for every row). One chunk waits at most: memory stays flat."""

    def __init__(self, conn: Connection):
        self.background = conn.dialect.name == "postgresql"
        self.error: BaseException | None = None
        if self.background:
            self.queue: queue.Queue = queue.Queue(maxsize=1)
            self.thread = threading.Thread(target=self._run, name="alma-load-writer", daemon=True)
            self.thread.start()

    def __call__(self, work: Callable[[], None]) -> None:
        if not self.background:
            work()
            return
        self._raise_if_failed()
        self.queue.put(work)

    def _run(self) -> None:
        while (work := self.queue.get()) is not None:
            if self.error is None:
                try:
                    work()
                except BaseException as exc:  # re-raised in the loading thread
                    self.error = exc

    def _raise_if_failed(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def __enter__(self) -> "_Writer":
        return self

    def __exit__(self, *exc_info) -> None:
        if self.background:
            if exc_info[0] is not None and self.error is None:
                self.error = exc_info[1]  # the load is refused: what waits is not written
            self.queue.put(None)
            self.thread.join()  # before the transaction ends, whichever way
            if exc_info[0] is None:
                self._raise_if_failed()


def _record_name(label: str, data: Any) -> str:
    pid = data.get("primary_id") if isinstance(data, dict) else None
    return f"{label} (primary_id {pid!r})" if isinstance(pid, str) and pid else label


class _Loader:
    def __init__(self, path: str):
        self.path = path
        self.problems = _Problems(path)
        self.counts: Counter = Counter({"users": 0, "codes_added": 0})
        # segment name ("user" for users) -> library-wide unique key -> where it was met in the file
        self.keys: dict[str, dict[tuple, str]] = {"user": {}}

    def start(self, conn: Connection) -> None:
        # Every code the tables hold, with its description: a record whose desc differs keeps its own
        # (format.py), and codes met for the first time are added to the tables chunk by chunk.
        self.found = {table: {code: desc or None for code, desc in descriptions(conn, table).items()}
                      for table in code_tables_used()}
        self.in_db = {table: set(codes) for table, codes in self.found.items()}

    # -- users

    def check(self, number: int, records: list[tuple[str, Any]]) -> Callable[[Connection], None] | None:
        """Check chunk `number`; returns its database work (refusing keys the library already holds,
        then writing), or None once the file has a problem (the rest is still checked, nothing more
        written)."""
        user_rows = Rows(None)
        codes = self.found
        new_keys: dict[str, dict[tuple, str]] = {}
        for label, data in records:
            name = _record_name(label, data)
            if not isinstance(data, dict):
                self.problems.add(name, "user", f"must be a JSON object, got {type(data).__name__}", number)
                continue
            found: list[tuple[str, str]] = []
            row = to_row(data, USER_PLAN, codes, found, "")
            pid = row.get("primary_id")
            if isinstance(pid, str):
                seen = self.keys["user"].get((pid,))
                if seen:
                    found.append(("primary_id", f"{pid!r} appears twice in the file (also {seen.split(' (')[0]})"))
                else:
                    self.keys["user"][(pid,)] = name
                    new_keys.setdefault("user", {})[(pid,)] = (name, "primary_id")
            index = len(user_rows.rows)
            user_rows.rows.append(row)
            user_rows.owners.append(index)
            self._collect(data, index, SEGMENTS, user_rows.children, codes, found, name, new_keys, "")
            for where, message in found:
                self.problems.add(name, where, message, number)
        if self.problems:
            return None
        new_codes = self._new_codes(codes)

        def write(conn: Connection) -> None:
            if self.problems.before(number):
                return
            self._check_against_database(conn, new_keys, number)
            if self.problems.before(number):
                return
            self._write_codes(conn, new_codes)
            user_ids = _insert(conn, users, user_rows.rows, want_ids=True)
            self.counts["users"] += len(user_rows.rows)
            _insert_children(conn, user_rows.children, user_ids, self.counts)

        return write

    def _collect(self, owner: dict, owner_index: int, segments: tuple[Segment, ...], into: dict[str, Rows],
                 codes: dict, found: list, name: str, new_keys: dict, prefix: str) -> None:
        contact = owner.get(CONTACT_INFO) if segments is SEGMENTS else None
        for segment, plan, path, unique, per_user, holder_name in _segment_info(segments):
            holder = owner
            if holder_name:
                holder = contact
                if holder is None:
                    continue
                if holder.__class__ is not dict:
                    found.append((f"{prefix}{holder_name}", "must be a JSON object"))
                    continue
            items = holder.get(segment.name)
            if not items:
                continue
            if items.__class__ is not list:
                if items.__class__ is not dict:
                    found.append((f"{prefix}{path}", "must be a list"))
                    continue
                items = [items]
            rows = into.get(segment.name)
            if rows is None:
                rows = into[segment.name] = Rows(segment)
            path = prefix + path
            within_user: dict[tuple, int] = {}
            append_row, append_owner = rows.rows.append, rows.owners.append
            if unique:
                seen_in_file = self.keys.setdefault(segment.name, {})
                new_in_chunk = new_keys.setdefault(segment.name, {})
            for i, item in enumerate(items):
                where = f"{path}[{i}]"
                if item.__class__ is not dict:
                    found.append((where, "must be a JSON object"))
                    continue
                row = to_row(item, plan, codes, found, where + ".")
                if unique:
                    # Where a key was met is kept as its parts and worded only for a message.
                    key = (row.get(unique[0]) or "",) if len(unique) == 1 else tuple(row.get(c) or "" for c in unique)
                    if key in seen_in_file:
                        first_name, first_where = seen_in_file[key]
                        found.append((f"{where}.{segment.unique[-1]}", f"{_describe(segment.unique, key)} appears "
                                      f"twice in the file (also {first_name} {first_where}.{segment.unique[-1]})"))
                    else:
                        seen_in_file[key] = new_in_chunk[key] = (name, where)
                if per_user:
                    key = tuple(row.get(c) or "" for c in per_user)
                    if key in within_user:
                        found.append((where, f"{_describe(segment.unique_per_user, key)} is already "
                                             f"in {path}[{within_user[key]}]"))
                    within_user.setdefault(key, i)
                index = len(rows.rows)
                append_row(row)
                append_owner(owner_index)
                if segment.children:
                    self._collect(item, index, segment.children, rows.children, codes, found, name, new_keys,
                                  where + ".")
                    if segment.name == "fee":
                        found.extend(_check_fee(row, rows.children, index, where))
                elif segment.name == "fee":
                    found.extend(_check_fee(row, {}, index, where))

    def _new_codes(self, codes: dict) -> dict[str, dict[str, str | None]]:
        """The codes met that the tables lack (taken now: the next chunk's checks add to `codes`)."""
        new_codes = {}
        for table_name, found in sorted(codes.items()):
            known = self.in_db.setdefault(table_name, set())
            if len(found) == len(known):
                continue
            new = {code: desc for code, desc in found.items() if code not in known}
            if new:
                new_codes[table_name] = new
                known.update(new)
        return new_codes

    def _write_codes(self, conn: Connection, new_codes: dict[str, dict[str, str | None]]) -> None:
        for table_name, new in new_codes.items():
            ensure_codes(conn, table_name, new)
            self.counts["codes_added"] += len(new)

    def _check_against_database(self, conn: Connection, new_keys: dict, number: int = 0) -> None:
        """Refuse primary ids, identifiers and loan/request/fee ids the library already holds."""
        checks: list[tuple[str, tuple[str, ...], Table, list[str]]] = [("user", ("primary_id",), users, ["primary_id"])]
        checks += [(s.name, s.unique, s.table, _unique_columns(s)) for s in _all_segments() if s.unique]
        for segment_name, names, table, columns in checks:
            wanted = new_keys.get(segment_name) or {}
            for key in _existing(conn, table, columns, list(wanted)):
                record, where = wanted[key]
                if segment_name != "user":
                    where = f"{where}.{names[-1]}"
                self.problems.add(record, where, f"{_describe(names, key)} is already in the library database",
                                  number, _Problems.DATABASE)

    # -- sub-resources

    def attach(self, conn: Connection, primary_id: str, source: Source) -> None:
        user_id = conn.execute(select(users.c.id).where(users.c.primary_id == primary_id,
                                                        users.c.purged_at.is_(None))).scalar()
        if user_id is None:
            raise InvalidInput(f"{self.path}: --attach-to: no user with primary_id {primary_id!r} in the library "
                               f"database; load the user first")
        segment = SEGMENT_BY_NAME[source.sub_resource]
        holder = {segment.name: source.items}
        name = f"--attach-to {primary_id!r}"
        children: dict[str, Rows] = {}
        codes = self.found
        found: list = []
        new_keys: dict = {}
        self._collect(holder, 0, (segment,), children, codes, found, name, new_keys, "")
        for where, message in found:
            self.problems.add(name, where, message)
        if self.problems:
            return
        self._check_against_database(conn, new_keys)
        if self.problems:
            return
        self._write_codes(conn, self._new_codes(codes))
        _insert_children(conn, children, [user_id], self.counts)


_SEGMENT_INFO: dict[int, list] = {}


def _segment_info(segments: tuple[Segment, ...]) -> list:
    info = _SEGMENT_INFO.get(id(segments))
    if info is None:
        info = _SEGMENT_INFO[id(segments)] = [
            (s, plan_for(s), s.path, tuple(_unique_columns(s)), tuple(_unique_columns(s, per_user=True)), s.under)
            for s in segments]
    return info


def _all_segments() -> list[Segment]:
    out, stack = [], list(SEGMENTS)
    while stack:
        seg = stack.pop(0)
        out.append(seg)
        stack += seg.children
    return out


def _check_fee(row: dict, children: dict[str, Rows], index: int, where: str) -> Iterator[tuple[str, str]]:
    """The ledger (balance = original_amount - transactions) and the sign rule: only a CREDIT fee
    carries negative amounts (as Alma sends it: balance and original_amount not above 0)."""
    balance, original = row.get("balance_minor"), row.get("original_amount_minor")
    if not isinstance(balance, int) or not isinstance(original, int):
        return  # already refused
    credit = row.get("fee_type") == CREDIT
    amounts: list = []
    transactions = children.get("transaction")
    if transactions is not None:  # this fee's are the last rows collected, owned by `index`
        i = len(transactions.owners) - 1
        while i >= 0 and transactions.owners[i] == index:
            amounts.append(transactions.rows[i].get("amount_minor"))
            i -= 1
        amounts.reverse()
    if not credit:
        negative = False
        for name, value in (("original_amount", original), ("balance", balance)):
            if value < 0:
                negative = True
                yield (f"{where}.{name}", f"may not be negative, got {_amount(value)} (only a CREDIT fee carries "
                                          f"negative amounts)")
        if negative:
            return
        for i, value in enumerate(amounts):
            if isinstance(value, int) and value < 0:
                yield (f"{where}.transaction[{i}].amount", f"may not be negative, got {_amount(value)} "
                                                           f"(only a CREDIT fee carries negative amounts)")
                return
    else:
        positive = False
        for name, value in (("original_amount", original), ("balance", balance)):
            if value > 0:
                positive = True
                yield (f"{where}.{name}", f"a CREDIT fee carries a negative amount (as Alma sends it), "
                                          f"got {_amount(value)}")
        if positive:
            return
    if any(not isinstance(a, int) for a in amounts):
        return
    paid = sum(amounts)
    if balance != original - paid:
        yield (f"{where}.balance", f"{_amount(balance)} does not match the ledger: original_amount "
                                   f"{_amount(original)} minus transactions {_amount(paid)} is {_amount(original - paid)}")


def _amount(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d}"


def _unique_columns(segment: Segment, per_user: bool = False) -> list[str]:
    by_name = {f.name: f.column_name for f in segment.fields}
    return [by_name[name] for name in (segment.unique_per_user if per_user else segment.unique)]


def _describe(names: tuple[str, ...], key: tuple) -> str:
    if len(key) == 1:
        return repr(key[0])
    return " ".join(f"{n} {v!r}" for n, v in zip(names, key))


_EXISTING: dict[tuple, Any] = {}


def _existing(conn: Connection, table: Table, columns: list[str], keys: list[tuple]) -> list[tuple]:
    query = _EXISTING.get((table.name, *columns))
    if query is None:
        # Each column IN its own values rather than (a, b) IN ((..), ..): PostgreSQL plans a row-value
        # list as an OR chain, seconds per chunk; this stays an index scan. Exact keys are matched here.
        # Expanding parameters: compiled once, not for each chunk's 2,000 values.
        cols = [table.c[c] for c in columns]
        query = _EXISTING[(table.name, *columns)] = select(*cols).where(
            *(col.in_(bindparam(f"v{n}", expanding=True)) for n, col in enumerate(cols)))
    found: list[tuple] = []
    for start in range(0, len(keys), LOOKUP_CHUNK):
        chunk = keys[start:start + LOOKUP_CHUNK]
        values = {f"v{n}": list({k[n] for k in chunk}) for n in range(len(columns))}
        wanted = set(chunk)
        found += [key for key in map(tuple, conn.execute(query, values)) if key in wanted]
    return found


def _insert_children(conn: Connection, children: dict[str, Rows], parent_ids: list[int], counts: Counter) -> None:
    for rows in children.values():
        segment = rows.segment
        column = segment.parent_column
        for row, owner in zip(rows.rows, rows.owners):
            row[column] = parent_ids[owner]
        ids = _insert(conn, segment.table, rows.rows, want_ids=bool(segment.children))
        counts[segment.count_as] += len(rows.rows)
        if segment.children:
            _insert_children(conn, rows.children, ids, counts)


def _insert(conn: Connection, table: Table, rows: list[dict], want_ids: bool) -> list[int]:
    """Insert `rows` (all with the same keys) straight through the driver: SQLAlchemy's per-row
    parameter processing cost more than the database's own work at 100,000 users (BENCHMARKS.md).
    The rows already hold what the driver stores (format.py: dates and times as their stored text,
    booleans, bytes). Parents get their ids first (from the sequence on PostgreSQL; on SQLite after the
    highest id, under the write lock this transaction holds), so children link to them without a
    read-back. PostgreSQL takes them with COPY, several times faster for the server than multi-row
    INSERTs; SQLite with executemany."""
    if not rows:
        return []
    ids: list[int] = []
    if want_ids:
        ids = _allocate_ids(conn, table, len(rows))
        for row, new_id in zip(rows, ids):
            row["id"] = new_id
    columns = [c for c in rows[0] if c in table.c]
    cursor = conn.connection.cursor()
    try:
        if conn.dialect.name == "postgresql":
            statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
            data = _copy_text(table, columns)(rows)
            # In one piece: psycopg2 lets go of the interpreter lock for each piece it sends, and the
            # checks beside it (_Writer) would hold the lock for several milliseconds each time.
            cursor.copy_expert(statement, io.StringIO(data), size=max(8192, len(data)))
        else:
            statement = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
            cursor.executemany(statement, map(itemgetter(*columns), rows) if len(columns) > 1
                               else ((r[columns[0]],) for r in rows))
    except conn.dialect.dbapi.Error as exc:  # worded by load_file, as SQLAlchemy's own errors are
        raise DBAPIError.instance(statement, None, exc, conn.dialect.dbapi.Error) from None
    finally:
        cursor.close()
    return ids


_COPY_TEXT: dict[tuple, Any] = {}


def _copy_text(table: Table, columns: list[str]):
    """A function from rows to COPY's text format (tab-separated, \\N for NULL, backslash escapes),
    compiled per table and column list as straight-line Python like the format's checks."""
    key = (table.name, tuple(columns))
    make = _COPY_TEXT.get(key)
    if make is not None:
        return make
    parts = []
    for n, name in enumerate(columns):
        kind = table.c[name].type
        v = f"r[{name!r}]"
        if isinstance(kind, Boolean):
            parts.append(f"('\\\\N' if (v{n} := {v}) is None else 't' if v{n} else 'f')")
        elif isinstance(kind, LargeBinary):
            parts.append(f"('\\\\N' if (v{n} := {v}) is None else '\\\\\\\\x' + v{n}.hex())")
        elif isinstance(kind, (Integer, BigInteger)) or name == "id":
            parts.append(f"('\\\\N' if (v{n} := {v}) is None else str(v{n}))")
        else:  # text, and dates and times as their stored text
            parts.append(f"('\\\\N' if (v{n} := {v}) is None else _escape(v{n}) if _special(v{n}) else v{n})")
    source = ("def copy_text(rows):\n"
              "    return ''.join([" + " + '\\t' + ".join(parts) + " + '\\n' for r in rows])\n")
    env = {"_escape": _copy_escape, "_special": _COPY_SPECIAL.search}
    exec(compile(source, f"<copy {table.name}>", "exec"), env)  # noqa: S102 - generated from the schema
    make = _COPY_TEXT[key] = env["copy_text"]
    return make


_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_escape(value: str) -> str:
    return value.translate(_COPY_ESCAPES)


def _allocate_ids(conn: Connection, table: Table, count: int) -> list[int]:
    if conn.dialect.name == "postgresql":
        query = text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)")
        return sorted(conn.execute(query, {"table": table.name, "n": count}).scalars())
    highest = conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar()
    return list(range(highest + 1, highest + 1 + count))


def _count_names() -> list[str]:
    return [segment.count_as for segment in _all_segments()]
