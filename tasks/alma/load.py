"""`load FILE...`: users in the Alma format (see tasks/alma/format.py) into the library database.

Each file loads in one transaction: entirely or not at all. Records are read and checked a chunk at a
time (JSON Lines and XML `<users>` are streamed, and a key met in an earlier chunk is found in the
database, so memory stays flat in the file's size), a large file's in a second process beside the one
that writes (_CheckingProcess), and each chunk's rows go in table by table (executemany, COPY); a
problem anywhere rolls the whole file back (the rest of the file is still checked, so the message lists
up to 20 problems at once). A chunk is written without looking its keys up first, the unique indexes
refusing a key the library or the file already holds; a file the database refuses is loaded again
with the look-ups, which word the messages (`_load_once`). A large file into an empty library is
written without the tables' other indexes, built at its end (`_defer_indexes`).

A file that is an Alma loans, fees or requests response (GET /users/{id}/loans, .../fees,
.../requests, or one fee) is not a file of users: `load --attach-to PRIMARY_ID FILE` attaches its
items to that user, already in the library; without it the file is refused with a message saying so.
"""
from __future__ import annotations

import contextlib
import functools
import io
import json
import marshal
import multiprocessing
import os
import queue
import threading
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

import orjson
from sqlalchemy import BigInteger, Boolean, Connection, Engine, Integer, LargeBinary, Table, func, select, text
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from tasks.alma import jsonio
from tasks.alma.inbox import Inbox
from tasks.alma.nogc import cyclic_gc_paused
from tasks.alma import xml as alma_xml
from tasks.alma.format import CONTACT_INFO, CREDIT, SEGMENTS, USER_PLAN, Segment, plan_for, segment_named, to_row
from tasks.alma.format import all_segments, checked_item_by_item, code_tables_used, compile_items, item_columns
from tasks.alma.format import unique_columns
from tasks.alma import typed
from tasks.alma.typed import Slow
from tasks.library.codes import descriptions, ensure_codes
from tasks.db.engine import may_set_sql, write_transaction
from tasks.errors import InvalidInput
from tasks.db.schema import users

MAX_REPORTED_PROBLEMS = 20
CHUNK = 5000         # records checked and written at a time
# The first chunk is smaller: nothing is written before it is checked, and the other core waits for it.
FIRST_CHUNK = 500

# The sub-resource responses Alma sends beside users: list name -> (what it is, what an item is).
SUB_RESOURCES = {
    "item_loan": ("a loans response (GET /almaws/v1/users/{id}/loans)", "loan"),
    "fee": ("a fees response (GET /almaws/v1/users/{id}/fees)", "fee"),
    "user_request": ("a requests response (GET /almaws/v1/users/{id}/requests)", "request"),
}


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
    trusting = attach_to is None and _keys_enforced(engine)
    links = attach_to is None and _links_by_construction(engine)
    try:
        return _load_once(engine, path, source, attach_to, look_up=not trusting, links=links)
    except _Refused:
        # The first attempt wrote nothing (its transaction rolled back): the load again, with every
        # chunk's keys looked up before it is written, words the refusal as it always has.
        return _load_once(engine, path, open_source(path), attach_to, look_up=True, links=links)


class _Refused(Exception):
    """The database refused a chunk written without looking its keys up (`_load_once`)."""


def _load_once(engine: Engine, path: str, source: Source, attach_to: str | None, look_up: bool,
               links: bool = False) -> dict:
    """One attempt at the file, in one transaction. With `look_up` false the chunks' library-wide keys
    (primary ids, identifiers, loan, request and fee ids) are not looked up in the database before a
    chunk is written: the unique indexes refuse a key already in the library or in an earlier chunk
    (repeats within a chunk are the checks'), and any refusal of the database raises _Refused, for
    the caller to load the file again the way that words the messages. A chunk that is not written
    (the file has a problem by then) is looked up either way, for the message. With `links` the
    chunks' rows are written without their foreign-key checks (`_links_by_construction`)."""
    loader = _Loader(path, look_up, links)
    checking = None
    if attach_to is None and _worth_a_process(path):
        # Before the transaction: the child holds no connection.
        checking = _CheckingProcess(source, os.path.getsize(path))
    try:
        with contextlib.ExitStack() as stack:
            if checking is not None:
                stack.enter_context(checking)
            conn = stack.enter_context(write_transaction(engine, sqlite_foreign_keys=not links))
            stack.enter_context(_sqlite_cache(conn))
            loader.start(conn)
            deferred: list[str] = []
            if attach_to is not None:
                loader.attach(conn, attach_to, source)
            else:
                found, in_db = loader.found, loader.in_db
                copy = _copies(conn)
                if checking is not None:
                    deferred = _defer_indexes(conn)
                chunks = (checking.results(found, in_db, copy, keys_wanted=look_up) if checking
                          else _checked_here(source, found, in_db, copy=copy))
                with _Writer(conn) as write:
                    for checked in chunks:
                        if checked is None:  # the writer waits for the other process's last chunks
                            if deferred and not loader.problems:
                                write(functools.partial(_build_indexes, conn, deferred))
                                deferred = []
                            continue
                        work = loader.take(checked)
                        write(lambda work=work: work(conn))
            loader.problems.raise_if_any()
            _build_indexes(conn, deferred)
            return dict(loader.counts)
    except (IntegrityError, DataError) as exc:
        if not look_up:
            raise _Refused() from None
        # Validation covers what we know of; this is a concurrent load or a rule only the database has.
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise InvalidInput(f"{path}: the database refused the file ({detail}); nothing was loaded") from None


# The share of a JSON Lines file (its end, in bytes) the writing process leaves to the checking one
# (_Claims): about what the checking process checks while the writer builds the deferred indexes and
# commits (BENCHMARKS.md, twelfth round).
WRITER_LEAVES = 0.15
# A file this large (about 100 users of the demo's shape) is checked in a second process; a smaller
# one in this process, which costs less than starting another.
PROCESS_FROM_BYTES = 256 * 1024
# SQLite's page cache during a load (KiB): its default 2 MB made SQLite write the indexes' pages out
# again and again during a large load (wall time 20.0 -> 16.6 s at 100,000 users, BENCHMARKS.md).
SQLITE_LOAD_CACHE_KIB = 65536


def _keys_enforced(engine: Engine) -> bool:
    """Whether the library's database has a unique index on each library-wide key (exactly
    its columns, not partial, checked at once): then a chunk can be written without looking its keys
    up first, the index refusing any the library or the file already holds (`_load_once`). On SQLite,
    the unique indexes (not partial) of the tables: the schema's UNIQUE constraints, which SQLite
    checks row by row (the look-ups took 0.7 s of 100,000 users' load, BENCHMARKS.md)."""
    wanted = {(table.name, frozenset(columns)) for _, _, table, columns in _key_checks()}
    if engine.dialect.name == "sqlite":
        found = set()
        with engine.connect() as conn:
            for table in sorted({table for table, _ in wanted}):
                for _, name, unique, _, partial in conn.exec_driver_sql(f'PRAGMA index_list("{table}")').all():
                    if unique and not partial:
                        columns = [row[2] for row in conn.exec_driver_sql(f'PRAGMA index_info("{name}")').all()]
                        if None not in columns:  # an expression is not the key's column
                            found.add((table, frozenset(columns)))
        return wanted <= found
    if engine.dialect.name != "postgresql":
        return False
    with engine.connect() as conn:
        found = conn.exec_driver_sql(
            "SELECT t.relname, array_agg(a.attname::text) FROM pg_index i"
            " JOIN pg_class t ON t.oid = i.indrelid"
            " JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY(i.indkey)"
            " WHERE i.indisunique AND i.indimmediate AND i.indisvalid AND i.indpred IS NULL"
            " AND i.indexprs IS NULL AND pg_table_is_visible(t.oid) AND t.relname = ANY(%(tables)s)"
            " GROUP BY i.indexrelid, t.relname",
            {"tables": sorted({table for table, _ in wanted})}).all()
    return wanted <= {(table, frozenset(columns)) for table, columns in found}


def _links_by_construction(engine: Engine) -> bool:
    """Whether a chunk's rows may be written without the foreign-key check of every row. Each row of a
    chunk links to a user (a transaction to a fee) that the same chunk has just inserted, in this
    uncommitted transaction, so the check cannot fail and no other session can remove the parent
    meanwhile; yet the database checks each row, looking its parent up. Only where the loaded tables
    have nothing but the schema's own foreign keys (a library's own foreign key keeps every check):
    - PostgreSQL: the chunk's COPYs with `session_replication_role = replica` (`_links_unchecked`);
      its checks, a query per row after the COPY, were half the server's CPU of a load of 100,000
      users (BENCHMARKS.md, eighth round). The setting skips triggers and rules too, so a library's
      own trigger or rule keeps every check, and so does a role that may not set it (it takes a
      superuser, or `GRANT SET ON PARAMETER session_replication_role`, docs/operations/server.md).
    - SQLite: the file's transaction with `PRAGMA foreign_keys` off (`write_transaction`), which
      skips nothing else (triggers run); 1.6-2.9 s of the inserts' CPU at 100,000 users (BENCHMARKS.md)."""
    tables = _loaded_tables()
    ours = {(fk.parent.table.name, fk.parent.name, fk.column.table.name, fk.column.name)
            for table in tables for fk in table.foreign_keys}
    names = sorted({table.name for table in tables})
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            # id, seq, parent table, column, parent column, ...: seq > 0 is a key of several columns
            found = [(name, fk[3], fk[2], fk[4], fk[1]) for name in names
                     for fk in conn.exec_driver_sql(f'PRAGMA foreign_key_list("{name}")').all()]
        return all(seq == 0 and (table, column, parent, to) in ours for table, column, parent, to, seq in found)
    if engine.dialect.name != "postgresql":
        return False
    with engine.connect() as conn:
        version = conn.connection.dbapi_connection.server_version
        if not conn.exec_driver_sql(f"SELECT {may_set_sql('session_replication_role', version)}").scalar():
            return False
        found = conn.exec_driver_sql(
            "SELECT t.relname, a.attname, r.relname, ra.attname, cardinality(c.conkey) FROM pg_constraint c"
            " JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class r ON r.oid = c.confrelid"
            " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]"
            " JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = c.confkey[1]"
            " WHERE c.contype = 'f' AND pg_table_is_visible(t.oid) AND t.relname = ANY(%(tables)s)",
            {"tables": names}).all()
        others = conn.exec_driver_sql(
            "SELECT (SELECT count(*) FROM pg_trigger g JOIN pg_class t ON t.oid = g.tgrelid"
            "        LEFT JOIN pg_constraint c ON c.oid = g.tgconstraint"
            "        WHERE pg_table_is_visible(t.oid) AND t.relname = ANY(%(tables)s)"
            "        AND NOT (g.tgisinternal AND c.contype IS NOT DISTINCT FROM 'f'))"
            "    + (SELECT count(*) FROM pg_rewrite w JOIN pg_class t ON t.oid = w.ev_class"
            "        WHERE pg_table_is_visible(t.oid) AND t.relname = ANY(%(tables)s))",
            {"tables": names}).scalar()
    return not others and all(columns == 1 and tuple(fk) in ours for *fk, columns in found)


def _worth_a_process(path: str) -> bool:
    if "fork" not in multiprocessing.get_all_start_methods():
        return False
    try:
        return os.path.getsize(path) >= PROCESS_FROM_BYTES
    except OSError:
        return False


@contextlib.contextmanager
def _sqlite_cache(conn: Connection) -> Iterator[None]:
    if conn.dialect.name != "sqlite":
        yield
        return
    before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_LOAD_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size = {int(before)}")


def _loaded_tables() -> list[Table]:
    """The tables a file of users is written to."""
    return [users] + [segment.table for segment in all_segments()]


def _defer_indexes(conn: Connection) -> list[str]:
    """A large file into an empty library: drop the loaded tables' non-unique indexes (CREATE INDEX's:
    user ids, the partial ones, a library's own) for the load and return the statements that build
    them again, run once every chunk is written, in the same transaction. Building an index from its
    table's rows costs less than keeping it up to date row by row (SQLite's writes of 100,000 users
    8.3 -> 7.0 s with the build; PostgreSQL's load 12 -> 11 s, BENCHMARKS.md). The unique indexes
    stay: they refuse a key met twice. A library with rows keeps every index: a build would read all
    its rows again, and on PostgreSQL a dropped index locks its table against every reader until the
    load commits (of an empty table, which has nothing to read yet). A role that does not own a table
    keeps its indexes. A load that is refused rolls back, and the indexes with it."""
    tables = [table.name for table in _loaded_tables()]
    if any(conn.exec_driver_sql(f"SELECT EXISTS (SELECT 1 FROM {name})").scalar() for name in tables):
        return []
    if conn.dialect.name == "postgresql":
        found = conn.exec_driver_sql(
            "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), pg_get_indexdef(i.indexrelid)"
            " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE NOT i.indisunique AND NOT i.indisprimary AND i.indisvalid AND pg_table_is_visible(t.oid)"
            " AND pg_has_role(t.relowner, 'USAGE')"  # only a table's owner may drop (and build) its index
            " AND t.relname = ANY(%(tables)s)"
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)"
            " ORDER BY c.relname", {"tables": tables}).all()
    elif conn.dialect.name == "sqlite":
        found = []
        for table in tables:
            for _, name, unique, origin, _ in conn.exec_driver_sql(f'PRAGMA index_list("{table}")').all():
                if not unique and origin == "c":
                    found.append((f'"{name}"', conn.exec_driver_sql(
                        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)).scalar()))
    else:
        return []
    for name, _ in found:
        conn.exec_driver_sql(f"DROP INDEX {name}")
    return [statement for _, statement in found]


def _build_indexes(conn: Connection, statements: list[str]) -> None:
    """The indexes `_defer_indexes` dropped, built again: once every chunk is written, or earlier, while
    the writer waits for the checking process's last chunks with nothing else to do (those chunks'
    rows then keep the indexes up to date as they are written, which costs less than the wait:
    BENCHMARKS.md, thirteenth round)."""
    for statement in statements:
        conn.exec_driver_sql(statement)


def _first_record(chunk: int) -> int:
    """The index (from 0) of chunk `chunk`'s first record: FIRST_CHUNK records, then CHUNK at a time."""
    return 0 if chunk == 0 else min(FIRST_CHUNK, CHUNK) + (chunk - 1) * CHUNK


def _chunk_of(index: int) -> int:
    """The chunk of the file's record `index` (from 0)."""
    first = _first_record(1)
    return 0 if index < first else 1 + (index - first) // CHUNK


def _chunks(records: Iterator) -> Iterator[list]:
    """`records` cut where `_chunk_of` cuts them."""
    chunk: list = []
    size = _first_record(1)
    for record in records:
        chunk.append(record)
        if len(chunk) >= size:
            yield chunk
            chunk, size = [], CHUNK
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
    # JSON Lines: the records again, those of the chunks `mine` ((chunk number, the byte of the file
    # its record begins at) -> bool) does not take
    # as None, their lines not parsed (two processes share the checks of one file, _CheckingProcess).
    records_of: Callable[[Callable[[int, int], bool]], Iterator] | None = None


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
        return Source(_json_lines(path), records_of=functools.partial(_json_lines, path))
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


# Each process reads every line of the file (the other's too, to count them): with the default 8 KB
# buffer the reading alone took 0.26 s of CPU a pass over 100,000 users, with 1 MB 0.08 s.
READ_BUFFER = 1 << 20


def _json_lines(path: str, mine: Callable[[int, int], bool] | None = None) -> Iterator[tuple[str, Any] | None]:
    with open(path, "rb", buffering=READ_BUFFER) as handle:
        count = 0  # records (non-blank lines) so far
        offset = 0  # where the line begins in the file
        for number, raw in enumerate(handle, start=1):
            at, offset = offset, offset + len(raw)
            if number == 1 and raw.startswith(_BOM):
                raw = raw[3:]
            if raw.isspace() or not raw:
                continue
            count += 1
            if mine is not None and not mine(_chunk_of(count - 1), at):
                yield None
                continue
            record = typed.decode(raw)
            if record is not None:
                yield f"line {number}", _Typed(record, raw)
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
    columns: tuple[str, ...]                    # of each row's values
    rows: list[tuple] = field(default_factory=list)
    owners: list[int] = field(default_factory=list)
    children: dict[str, "Rows"] = field(default_factory=dict)


class _Typed(NamedTuple):
    """A JSON line of the plain shape, decoded by msgspec (tasks/alma/typed.py), with its text for
    format.py's checks should it not be plain after all."""

    record: Any
    raw: bytes


def _row_tuple(row: dict, columns: tuple) -> tuple:
    """A row of to_row (a dict) as the tuple of `columns` the driver takes."""
    return tuple([row[c] for c in columns])


def _take_typed(record: Any, name: str, user_rows: Rows, new_keys: dict, found: dict) -> None:
    """A typed user and its lists into the chunk's rows and keys, all or (Slow) nothing: everything is
    made first and taken only once the whole record is plain, with no key met before."""
    user_row = typed.USER.row(record, found)
    pid = (user_row[_PID_AT],)
    users_met = new_keys["user"]
    if pid in users_met:
        raise Slow
    lists = []
    contact = record.contact_info
    if contact is not None:
        lists += [(shape, items) for shape in typed.CONTACT if (items := getattr(contact, shape.name))]
    lists += [(shape, items) for shape in typed.TOP if (items := getattr(record, shape.name))]
    built, keys = [], []
    for shape, items in lists:
        make = shape.row
        rows = [make(item, found) for item in items]
        children = _typed_fees(items, rows, shape, found) if shape.children else None
        if shape.unique or shape.per_user:
            _typed_keys(shape, rows, name, new_keys, keys)
        built.append((shape, rows, children))
    for met, key, where in keys:
        met[key] = where
    users_met[pid] = (name, "primary_id")
    owner = len(user_rows.rows)
    user_rows.rows.append(user_row)
    user_rows.owners.append(owner)
    into = user_rows.children
    for shape, rows, children in built:
        taken = into.get(shape.name)
        if taken is None:
            taken = into[shape.name] = Rows(shape.segment, shape.columns)
        first = len(taken.rows)
        taken.rows += rows
        taken.owners += [owner] * len(rows)
        if children:
            child_shape = shape.children[0]
            kept = taken.children.get(child_shape.name)
            for j, child_rows in enumerate(children):
                if child_rows:
                    if kept is None:
                        kept = taken.children[child_shape.name] = Rows(child_shape.segment, child_shape.columns)
                    kept.rows += child_rows
                    kept.owners += [first + j] * len(child_rows)


_PID_AT = typed.USER.columns.index("primary_id")


def _typed_fees(items: list, rows: list, shape: Any, found: dict) -> list[list]:
    """The transactions of each typed fee, its ledger held to format.py's rule (else Slow)."""
    (child,) = shape.children  # a fee's transactions: the one list inside a list of the format
    make, columns = child.row, shape.columns
    out = []
    for item, row in zip(items, rows):
        child_rows = [make(t, found) for t in getattr(item, child.name) or ()]
        transactions = Rows(child.segment, child.columns, child_rows, [0] * len(child_rows))
        if next(_check_fee(dict(zip(columns, row)), {child.name: transactions}, 0, ""), None) is not None:
            raise Slow
        out.append(child_rows)
    return out


def _typed_keys(shape: Any, rows: list, name: str, new_keys: dict, keys: list) -> None:
    """The keys of a list, unique in the library or within the user, met nowhere before (else Slow:
    the checks word it); noted in `keys` for `_take_typed` to take."""
    if shape.per_user and len(rows) > 1:  # one item cannot repeat within its user
        if len({tuple([row[p] or "" for p in shape.per_user]) for row in rows}) < len(rows):
            raise Slow
    unique = shape.unique
    if not unique:
        return
    met = new_keys.get(shape.name)
    if met is None:
        met = new_keys[shape.name] = {}
    if len(unique) == 1:
        (at,) = unique
        found = [(row[at] or "",) for row in rows]
    else:
        found = [tuple([row[p] or "" for p in unique]) for row in rows]
    if not met.keys().isdisjoint(found) or len(found) > 1 and len(set(found)) < len(found):
        raise Slow
    # Where a key was met, as format.py's checks note it: (record, path, index); (record, where) for a
    # list checked item by item (a fee's).
    path = shape.segment.path
    if shape.item_by_item:
        keys += [(met, key, (name, f"{path}[{i}]")) for i, key in enumerate(found)]
    else:
        keys += [(met, key, (name, path, i)) for i, key in enumerate(found)]


class _Problems:
    """The problems found, in the file's order: those of checking the records (found chunk by chunk,
    in the checking process) and those of the database (a key already in the library or met in an
    earlier chunk), which the writer finds while a later chunk is being checked; the message lists a
    chunk's checks before its database problems, as a load that did one chunk after the other would.
    A key met in an earlier chunk is found in the database (that chunk's rows are written): where it
    was met first is looked up in the file only when the message is worded (`word_repeats`)."""

    CHECK, DATABASE = 0, 1

    def __init__(self, path: str):
        self.path = path
        self.found: list[list] = [[], []]   # per source: (chunk, source, sequence, record, where, message)
        self.counts = [0, 0]
        self.first_chunk = None              # the first chunk with a problem: nothing after it is written
        self.lock = threading.Lock()         # the loading thread and the writer add problems
        self.word_repeats: Callable[[list["_Repeat"]], dict] | None = None

    def add(self, where_record: str, where: str, message: "str | _Repeat", chunk: int = 0,
            source: int = CHECK) -> None:
        with self.lock:
            if self.first_chunk is None or chunk < self.first_chunk:
                self.first_chunk = chunk
            if len(self.found[source]) < MAX_REPORTED_PROBLEMS:
                self.found[source].append((chunk, source, len(self.found[source]), where_record, where, message))
            self.counts[source] += 1

    def __bool__(self) -> bool:
        return self.first_chunk is not None

    def before(self, chunk: int) -> bool:
        """Whether a chunk up to `chunk` has a problem (then `chunk` is not written)."""
        return self.first_chunk is not None and self.first_chunk <= chunk

    def raise_if_any(self) -> None:
        if self:
            shown = sorted(self.found[0] + self.found[1])[:MAX_REPORTED_PROBLEMS]
            repeats = [message for *_, message in shown if isinstance(message, _Repeat)]
            worded = self.word_repeats(repeats) if repeats and self.word_repeats else {}
            lines = [f"{self.path}: {record}: {where}: {worded.get(message, message)}"
                     for *_, record, where, message in shown]
            more = sum(self.counts) - len(lines)
            if more:
                lines.append(f"{self.path}: ... and {more} more problems")
            lines.append(f"{self.path}: nothing was loaded")
            raise InvalidInput("\n".join(lines))


class _Repeat(NamedTuple):
    """A library-wide key the database already holds from an earlier chunk of this file: worded once
    the first record that has it is found again in the file."""

    segment: str          # "user" or a segment's name
    names: tuple          # the key's fields
    key: tuple
    chunk: int            # the chunk where it was met again


def _met_at(met: tuple) -> tuple[str, str]:
    """Where a key was met, (record, where): kept as (record, where), or as (record, list path, item
    index) by the generated checks of a list (format.compile_items), worded only for a message."""
    if len(met) == 2:
        return met
    record, path, i = met
    return record, f"{path}[{i}]"


def _repeat_message(names: tuple, key: tuple, first: tuple | None, segment: str) -> str:
    """Met twice in the file, `first` (record name, where) the first time; None: not met before in the
    file after all (a concurrent load put it in the library meanwhile)."""
    if first is None:
        return f"{_describe(names, key)} is already in the library database"
    first_name, first_where = _met_at(first)
    if segment == "user":
        return f"{key[0]!r} appears twice in the file (also {first_name.split(' (')[0]})"
    return f"{_describe(names, key)} appears twice in the file (also {first_name} {first_where}.{names[-1]})"


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


class _Checked(NamedTuple):
    """One chunk checked: its rows (`_as_rows`; None once it has a problem: never written), its
    problems (record, where, message), the library-wide keys it holds (segment name -> key -> (record,
    where), the first time in the chunk; None when the checking process left them out, as nobody
    wanted them: `_CheckingProcess.keys_wanted`) and the codes met in it that the tables lack. Plain
    values only: it goes between processes by `marshal`, several times faster than pickle for them."""

    number: int
    rows: tuple | None
    problems: list
    keys: dict | None
    new_codes: dict


def _as_rows(rows: Rows, copy: bool = False) -> tuple:
    """Rows as (segment name or None for users, columns, values, owners, children): the values a tuple
    per row in the columns' order, as the driver takes them; with `copy` (PostgreSQL) each row's line
    of COPY's text format, but for its ids (`_insert_rows` puts them in front). The line is made
    where the chunk is checked: the rows then cross between the processes as one string each, not as
    a tuple of values, and the process that writes only joins the lines to their ids."""
    table = users if rows.segment is None else rows.segment.table
    columns: tuple = ()
    values: list = []
    if rows.rows:
        columns = rows.columns
        values = _copy_lines(table, columns)(rows.rows) if copy else rows.rows
    return (None if rows.segment is None else rows.segment.name, columns, values, rows.owners,
            [_as_rows(child, copy) for child in rows.children.values()])


class _Checker:
    """Checks the records chunk by chunk and turns them into rows: in a second process for a large
    file (`_CheckingProcess`), beside the one that writes. It keeps nothing from one chunk to the next
    but the codes met, so memory stays flat in the file's size: a key met in an earlier chunk is found
    by the writer in the database, where that chunk's rows already are."""

    def __init__(self, found: dict, in_db: dict, copy: bool = False):
        self.found = found   # code table -> code -> desc: the tables' codes, then those met
        self.in_db = in_db   # code table -> the codes the tables hold (or will, once written)
        self.copy = copy     # rows as COPY's lines (PostgreSQL), not tuples

    def check(self, number: int, records: list[tuple[str, Any]]) -> _Checked:
        user_rows = Rows(None, columns=typed.USER.columns)
        codes = self.found
        new_keys: dict[str, dict[tuple, tuple]] = {"user": {}}
        users_met = new_keys["user"]
        problems: list = []
        for label, data in records:
            if data.__class__ is _Typed:
                name = _record_name(label, {"primary_id": data.record.primary_id})
                try:
                    _take_typed(data.record, name, user_rows, new_keys, codes)
                    continue
                except Slow:
                    data = _parse(data.raw)  # the checks below word what is not plain
            name = _record_name(label, data)
            if not isinstance(data, dict):
                problems.append((name, "user", f"must be a JSON object, got {type(data).__name__}"))
                continue
            found: list[tuple[str, str]] = []
            row = to_row(data, USER_PLAN, codes, found, "")
            pid = row.get("primary_id")
            if isinstance(pid, str):
                seen = users_met.get((pid,))
                if seen:
                    found.append(("primary_id", _repeat_message(("primary_id",), (pid,), seen, "user")))
                else:
                    users_met[(pid,)] = (name, "primary_id")
            index = len(user_rows.rows)
            user_rows.rows.append(_row_tuple(row, user_rows.columns))
            user_rows.owners.append(index)
            self._collect(data, index, SEGMENTS, user_rows.children, codes, found, name, new_keys, "")
            for where, message in found:
                problems.append((name, where, message))
        if problems:
            return _Checked(number, None, problems, new_keys, {})
        return _Checked(number, _as_rows(user_rows, self.copy), problems, new_keys, self._new_codes(codes))

    def _collect(self, owner: dict, owner_index: int, segments: tuple[Segment, ...], into: dict[str, Rows],
                 codes: dict, found: list, name: str, new_keys: dict, prefix: str) -> None:
        contact = owner.get(CONTACT_INFO) if segments is SEGMENTS else None
        for segment, plan, path, unique, per_user, holder_name, all_items in _segment_info(segments):
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
                rows = into[segment.name] = Rows(segment, columns=item_columns(plan))
            path = prefix + path
            append_row, append_owner = rows.rows.append, rows.owners.append
            met = new_keys.setdefault(segment.name, {}) if unique else None
            if all_items is not None:
                all_items(items, path, codes, found, append_row, append_owner, owner_index, met, name)
                continue
            within_user: dict[tuple, int] = {}
            for i, item in enumerate(items):
                where = f"{path}[{i}]"
                if item.__class__ is not dict:
                    found.append((where, "must be a JSON object"))
                    continue
                row = to_row(item, plan, codes, found, where + ".")
                if unique:
                    # Where a key was met is kept as its parts and worded only for a message.
                    key = (row.get(unique[0]) or "",) if len(unique) == 1 else tuple(row.get(c) or "" for c in unique)
                    first = met.get(key)
                    if first is not None:
                        found.append((f"{where}.{segment.unique[-1]}",
                                      _repeat_message(segment.unique, key, first, segment.name)))
                    else:
                        met[key] = (name, where)
                if per_user:
                    key = tuple(row.get(c) or "" for c in per_user)
                    if key in within_user:
                        found.append((where, f"{_describe(segment.unique_per_user, key)} is already "
                                             f"in {path}[{within_user[key]}]"))
                    within_user.setdefault(key, i)
                index = len(rows.rows)
                append_row(_row_tuple(row, rows.columns))
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


def _checked_here(source: Source, found: dict, in_db: dict, mine: Callable[[int, int], bool] | None = None,
                  copy: bool = False) -> Iterator[_Checked | None]:
    """The chunks checked in this process; with `mine`, None for each chunk it does not take."""
    checker = _Checker(found, in_db, copy)
    records = source.records if mine is None else source.records_of(mine)
    for number, chunk in enumerate(_chunks(records)):
        yield None if chunk[0] is None else checker.check(number, chunk)


class _Claims:
    """Which process checks which chunk of a JSON Lines file: each takes the next chunk nobody has
    when it is ready for one (a counter in shared memory), so the writing process checks chunks
    whenever the checking process has none ready for it, and both finish together whatever the
    database and the machine's load. `mine(n, at)` is asked for each record's chunk, in order, with
    the byte the record begins at. With `takes_until`, this process takes no chunk beginning at or
    after that byte: the writing process leaves the file's end to the other, for its own end is the
    index builds and the commit, which only it can do (else it checked the last chunks too, and the
    other waited for its end with nothing to do)."""

    def __init__(self, counter, takes_until: int | None = None):
        self.counter = counter
        self.takes_until = takes_until
        self.current = -1     # the chunk this process took last
        self.stopped = False  # past `takes_until`: it takes no more

    def mine(self, number: int, at: int = 0) -> bool:
        if number > self.current:
            if self.stopped:
                return False
            with self.counter.get_lock():  # every chunk before `number` is taken: the counter is past it
                next_free = self.counter.value
                # Where the next free chunk begins, from where `number` begins (records of about one size).
                if (self.takes_until is not None
                        and at * _first_record(next_free) >= self.takes_until * max(1, _first_record(number))):
                    self.stopped = True  # every later chunk begins further on
                    return False
                self.current = next_free
                self.counter.value += 1
        return number == self.current


class _CheckingProcess:
    """The checks of a large file in a second process (forked: it reads the file itself), on one core
    while this process writes on the other; of a JSON Lines file this process checks the chunks the
    other has not taken when it has nothing to write (`_Claims`). The chunks come back through a pipe,
    read ahead by a thread, and are written in the file's order (a few chunks at most wait: memory
    stays flat)."""

    def __init__(self, source: Source, size: int):
        context = multiprocessing.get_context("fork")
        self.shared = source.records_of is not None
        self.counter = context.Value("q", 0) if self.shared else None
        # Whether the writer wants each chunk's keys (segment -> key -> where met): it does when it looks
        # them up, or once the file has a problem (then a clash with a later chunk is worded, not met
        # by a unique index); set by either process. A file that loads has no use for them, and they
        # were a third of what crosses (3 MB a chunk, 40 ms to dump and load).
        self.keys_wanted = context.Value("b", 0, lock=False)
        self.pipe, child_end = context.Pipe()
        self.process = context.Process(target=_check_in_child,
                                       args=(source, child_end, self.pipe, self.counter, self.keys_wanted),
                                       name="alma-load-checks", daemon=True)
        self.process.start()
        child_end.close()
        self.source = source
        self.size = size  # the file's, in bytes
        self.inbox = Inbox(self.pipe, ahead=3, name="alma-load-inbox")

    def _take(self, block: bool) -> tuple[str, Any] | None:
        """The checking process's next message: ("chunk", _Checked), ("refused", (chunk, message)),
        ("end", None); None when there is none yet and `block` is false."""
        try:
            data = self.inbox.get(block=block)
        except queue.Empty:
            return None
        if data is None:
            raise RuntimeError("the process checking the file ended without a word")
        what, value = marshal.loads(data)
        if what == "failed":
            raise RuntimeError(f"checking the file failed:\n{value}")
        return what, (_Checked(*value) if what == "chunk" else value)

    def results(self, found: dict, in_db: dict, copy: bool, keys_wanted: bool) -> Iterator[_Checked | None]:
        """Every chunk checked, in the file's order; the other process's without their keys (None) while
        nobody wants them (`keys_wanted`, then the first problem). None once, between them, the first
        time this process is about to wait for the other with nothing of its own left to check and
        more than half of the file's chunks given."""
        if keys_wanted:
            self.keys_wanted.value = 1
        self.pipe.send((found, in_db, copy))
        ready: dict[int, _Checked | InvalidInput] = {}  # by chunk number: checked, or refused there
        own = claims = None
        if self.shared:
            claims = _Claims(self.counter, takes_until=int(self.size * (1 - WRITER_LEAVES)))
            own = _checked_here(self.source, found, in_db, claims.mine, copy)
        child_done, next_number, waited = False, 0, False
        chunks = 0  # of the file, once this process has read it all (`own` done)
        while True:
            if next_number in ready:
                checked = ready.pop(next_number)
                if isinstance(checked, InvalidInput):
                    raise checked
                yield checked
                next_number += 1
                continue
            if child_done and own is None:
                if ready:
                    raise RuntimeError(f"load: chunk {next_number} of the file was never checked")
                return
            # About to wait for the other with nothing of its own left to check, most of the file
            # written (else what is left would cost more to write with the indexes kept up to date).
            idle = self.shared and own is None and not waited and 2 * next_number >= chunks
            message = None if child_done else self._take(block=own is None and not idle)
            if message is None and idle and not child_done:
                waited = True
                yield None
                continue
            if message is not None:
                what, value = message
                if what == "chunk":
                    ready[value.number] = value
                elif what == "refused":
                    number, text = value
                    if number is None:  # it checks every chunk: this is the next
                        raise InvalidInput(text)
                    ready[number] = InvalidInput(text)
                    child_done = True  # it checks no further
                else:
                    child_done = True
                continue
            try:  # nothing ready from the other process: check the next chunk here
                checked = next(own)
            except StopIteration:
                own = None
            except InvalidInput as exc:
                ready[claims.current] = exc
                own = None
            else:
                chunks += 1
                if checked is not None:
                    if checked.problems:
                        self.keys_wanted.value = 1
                    ready[checked.number] = checked

    def __enter__(self) -> "_CheckingProcess":
        return self

    def __exit__(self, *exc_info) -> None:
        if self.process.is_alive() and exc_info[0] is not None:
            self.process.kill()  # the load is refused: the rest of the file is not wanted
        self.process.join()
        self.inbox.close()
        self.pipe.close()


def _check_in_child(source: Source, pipe, parent_end, counter, keys_wanted) -> None:
    parent_end.close()
    claims = _Claims(counter) if counter is not None else None
    try:
        found, in_db, copy = pipe.recv()
        with cyclic_gc_paused():
            for checked in _checked_here(source, found, in_db, claims.mine if claims else None, copy):
                if checked is not None:
                    if checked.problems:
                        keys_wanted.value = 1
                    if not keys_wanted.value:
                        checked = checked._replace(keys=None)
                    # Version 2, without marshal's table of objects met twice: a chunk's values
                    # are nearly all met once, and dumping is a third faster without it.
                    pipe.send_bytes(marshal.dumps(("chunk", tuple(checked)), 2))
        pipe.send_bytes(marshal.dumps(("end", None)))
    except InvalidInput as exc:
        pipe.send_bytes(marshal.dumps(("refused", (claims.current if claims else None, str(exc)))))
    except (BrokenPipeError, EOFError):
        pass  # the writer gave up (its own error is the one reported)
    except BaseException:  # noqa: BLE001 - reported by the writer, which raises it
        pipe.send_bytes(marshal.dumps(("failed", traceback.format_exc())))
    finally:
        pipe.close()


# The library-wide keys: (segment name, the key's fields, its table, the key's columns).
_KEY_CHECKS: list[tuple[str, tuple[str, ...], Table, list[str]]] = []


def _key_checks() -> list:
    if not _KEY_CHECKS:
        _KEY_CHECKS.append(("user", ("primary_id",), users, ["primary_id"]))
        _KEY_CHECKS.extend((s.name, s.unique, s.table, unique_columns(s)) for s in all_segments() if s.unique)
    return _KEY_CHECKS


class _Loader:
    """The writing side of a load: the transaction, the database's checks and the rows' inserts."""

    def __init__(self, path: str, look_up: bool = True, links: bool = False):
        self.path = path
        self.look_up = look_up   # false: a chunk that is written is not looked up first (_load_once)
        self.links = links       # true: a chunk's rows are written without foreign-key checks
        self.problems = _Problems(path)
        self.problems.word_repeats = self._word_repeats
        self.counts: Counter = Counter({"users": 0, "codes_added": 0})
        # Keys of chunks that are not written (at and after the first with a problem), where the
        # database cannot find them: segment name -> key -> (record, where). Empty for a file that loads.
        self.unwritten: dict[str, dict[tuple, tuple]] = {}

    def start(self, conn: Connection) -> None:
        # Every code the tables hold, with its description: a record whose desc differs keeps its own
        # (format.py), and codes met for the first time are added to the tables chunk by chunk.
        self.found = {table: {code: desc or None for code, desc in descriptions(conn, table).items()}
                      for table in code_tables_used()}
        self.in_db = {table: set(codes) for table, codes in self.found.items()}
        # The codes written, as the chunks come: two processes check chunks, each noting new codes.
        self.codes_written = {table: set(codes) for table, codes in self.found.items()}
        # Rows above these ids are this load's: a key found there was met in an earlier chunk.
        self.last_ids = {table.name: _highest_id(conn, table) for _, _, table, _ in _key_checks()}

    # -- users

    def take(self, checked: _Checked) -> Callable[[Connection], None]:
        """A chunk checked: its problems noted; returns its database work (refusing keys the library
        or an earlier chunk already holds, then writing unless the file has a problem by then)."""
        number = checked.number
        for name, where, message in checked.problems:
            self.problems.add(name, where, message, number)

        def write(conn: Connection) -> None:
            keys = checked.keys
            if self.look_up or self.problems.before(number):
                if keys is None:  # sent before the other process knew of the problem
                    keys = self._keys_again(number)
                self._check_against_database(conn, keys, number)
            if self.problems.before(number):
                self._note_unwritten(keys, number)
                return
            self._write_codes(conn, checked.new_codes)
            with _links_unchecked(conn, self.links):
                _insert_rows(conn, checked.rows, None, self.counts)

        return write

    def _write_codes(self, conn: Connection, new_codes: dict[str, dict[str, str | None]]) -> None:
        for table_name, new in new_codes.items():
            written = self.codes_written.setdefault(table_name, set())
            new = {code: desc for code, desc in new.items() if code not in written}
            if new:
                ensure_codes(conn, table_name, new)
                written.update(new)
                self.counts["codes_added"] += len(new)

    def _check_against_database(self, conn: Connection, new_keys: dict, number: int = 0) -> None:
        """Refuse primary ids, identifiers and loan/request/fee ids the library already holds, or an
        earlier chunk of the file (written already, or kept aside once the file has a problem)."""
        for segment_name, names, table, columns in _key_checks():
            wanted = new_keys.get(segment_name) or {}
            if not wanted:
                continue
            last_id = self.last_ids[table.name]
            for key, row_id in _existing(conn, table, columns, list(wanted)):
                record, where = _met_at(wanted[key])
                if segment_name != "user":
                    where = f"{where}.{names[-1]}"
                if row_id > last_id:
                    message = _Repeat(segment_name, names, key, number)
                else:
                    message = f"{_describe(names, key)} is already in the library database"
                self.problems.add(record, where, message, number, _Problems.DATABASE)
            aside = self.unwritten.get(segment_name)
            if aside:
                for key in wanted.keys() & aside.keys():
                    record, where = _met_at(wanted[key])
                    if segment_name != "user":
                        where = f"{where}.{names[-1]}"
                    self.problems.add(record, where, _repeat_message(names, key, aside[key], segment_name),
                                      number, _Problems.DATABASE)

    def _note_unwritten(self, new_keys: dict, number: int) -> None:
        # Only once the file is refused anyway: its later chunks are still checked for the message.
        for segment_name, keys in new_keys.items():
            aside = self.unwritten.setdefault(segment_name, {})
            for key, first in keys.items():
                aside.setdefault(key, first)

    def _checked_again(self, only: int | None = None) -> Iterator[_Checked]:
        """The file's chunks checked again here, only to word a refusal; with `only`, that chunk
        alone is checked where the file's kind allows (JSON Lines), the others skipped unparsed."""
        found = {table: dict(codes) for table, codes in self.found.items()}  # a copy: this reading adds to it
        source = open_source(self.path)
        mine = None if only is None or source.records_of is None else (lambda n, _at: n == only)
        for checked in _checked_here(source, found, {}, mine):
            if checked is not None:
                yield checked

    def _keys_again(self, number: int) -> dict:
        """Chunk `number`'s keys, the other process having sent it without them (only for a file with
        a problem, to word what it repeats)."""
        for checked in self._checked_again(only=number):
            if checked.number == number:
                return checked.keys
        raise RuntimeError(f"load: chunk {number} of {self.path} is not in the file")

    def _word_repeats(self, repeats: list[_Repeat]) -> dict:
        """Where each key was met first: the file read again up to there (only to word a refusal)."""
        wanted = {(r.segment, r.key) for r in repeats}
        first: dict[tuple, tuple] = {}
        last_chunk = max(r.chunk for r in repeats)
        for checked in self._checked_again():
            if checked.number > last_chunk:
                break
            for segment_name, keys in checked.keys.items():
                for key, where in keys.items():
                    if (segment_name, key) in wanted and (segment_name, key) not in first:
                        first[(segment_name, key)] = (checked.number, where)
            if len(first) == len(wanted):
                break
        worded = {}
        for r in repeats:
            number, where = first.get((r.segment, r.key), (None, None))
            earlier = where if number is not None and number < r.chunk else None
            worded[r] = _repeat_message(r.names, r.key, earlier, r.segment)
        return worded

    # -- sub-resources

    def attach(self, conn: Connection, primary_id: str, source: Source) -> None:
        user_id = conn.execute(select(users.c.id).where(users.c.primary_id == primary_id,
                                                        users.c.purged_at.is_(None))).scalar()
        if user_id is None:
            raise InvalidInput(f"{self.path}: --attach-to: no user with primary_id {primary_id!r} in the library "
                               f"database; load the user first")
        segment = segment_named(source.sub_resource)
        holder = {segment.name: source.items}
        name = f"--attach-to {primary_id!r}"
        children: dict[str, Rows] = {}
        checker = _Checker(self.found, self.in_db)
        found: list = []
        new_keys: dict = {}
        checker._collect(holder, 0, (segment,), children, self.found, found, name, new_keys, "")
        for where, message in found:
            self.problems.add(name, where, message)
        if self.problems:
            return
        self._check_against_database(conn, new_keys)
        if self.problems:
            return
        self._write_codes(conn, checker._new_codes(self.found))
        for rows in children.values():
            _insert_rows(conn, _as_rows(rows, _copies(conn)), [user_id], self.counts)


_SEGMENT_INFO: dict[int, list] = {}


def _segment_info(segments: tuple[Segment, ...]) -> list:
    info = _SEGMENT_INFO.get(id(segments))
    if info is None:
        info = _SEGMENT_INFO[id(segments)] = [_info_of(s) for s in segments]
    return info


def _info_of(s: Segment) -> tuple:
    plan, unique = plan_for(s), tuple(unique_columns(s))
    all_items = None if checked_item_by_item(s) else compile_items(plan, s.name, unique, s.unique, _repeat_message)
    return s, plan, s.path, unique, tuple(unique_columns(s, per_user=True)), s.under, all_items


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
        at = transactions.columns.index("amount_minor")
        i = len(transactions.owners) - 1
        while i >= 0 and transactions.owners[i] == index:
            amounts.append(transactions.rows[i][at])
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


def _describe(names: tuple[str, ...], key: tuple) -> str:
    if len(key) == 1:
        return repr(key[0])
    return " ".join(f"{n} {v!r}" for n, v in zip(names, key))


def _existing(conn: Connection, table: Table, columns: list[str], keys: list[tuple]) -> list[tuple[tuple, int]]:
    """The keys among `keys` that `table` holds, each with its row's id. One statement per column
    list, straight through the driver (SQLAlchemy's expanding IN compiled 2,000 parameters a query),
    each column matched against its own values (an index scan on both databases; a row-value list is
    an OR chain on PostgreSQL), the exact keys picked here."""
    if not keys:
        return []
    values = [list({k[n] for k in keys}) for n in range(len(columns))]
    cursor = conn.connection.cursor()
    try:
        if conn.dialect.name == "postgresql":
            where = " AND ".join(f"{c} = ANY(%s)" for c in columns)
            cursor.execute(f"SELECT id, {', '.join(columns)} FROM {table.name} WHERE {where}", values)
        else:
            where = " AND ".join(f"{c} IN (SELECT value FROM json_each(?))" for c in columns)
            cursor.execute(f"SELECT id, {', '.join(columns)} FROM {table.name} WHERE {where}",
                           [_json_array(v) for v in values])
        found_rows = cursor.fetchall()
    finally:
        cursor.close()
    wanted = set(keys)
    return [(key, row_id) for row_id, *parts in found_rows if (key := tuple(parts)) in wanted]


def _json_array(values: list[str]) -> str:
    try:
        return orjson.dumps(values).decode("utf-8")
    except TypeError:  # a lone surrogate (refused by the checks already): escaped, it matches nothing
        return json.dumps(values)


@contextlib.contextmanager
def _links_unchecked(conn: Connection, unchecked: bool) -> Iterator[None]:
    """The chunk's inserts, without foreign-key checks when `unchecked` (`_links_by_construction`):
    for them alone, then the session's own setting again (SET LOCAL: a rollback undoes it too). On
    SQLite the whole transaction is without them already (`write_transaction`)."""
    if not unchecked or conn.dialect.name != "postgresql":
        yield
        return
    was = conn.exec_driver_sql("SHOW session_replication_role").scalar()
    conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
    yield
    conn.exec_driver_sql("SELECT set_config('session_replication_role', %(was)s, true)", {"was": was})


def _insert_rows(conn: Connection, rows: tuple, parent_ids: list[int] | None, counts: Counter) -> None:
    """Insert the rows of `_as_rows` (users when `parent_ids` is None), then their children."""
    name, columns, values, owners, children = rows
    if not values:
        return
    segment = None if name is None else segment_named(name)
    table = users if segment is None else segment.table
    ids = _allocate_ids(conn, table, len(values)) if segment is None or segment.children else None
    if parent_ids is None:
        lead, leads = ("id",), ids
    else:
        parents = list(map(parent_ids.__getitem__, owners))
        if ids is None:
            lead, leads = (segment.parent_column,), parents
        else:
            lead, leads = ("id", segment.parent_column), list(zip(ids, parents))
    _insert(conn, table, lead, leads, columns, values)
    counts["users" if segment is None else segment.count_as] += len(values)
    for child in children:
        _insert_rows(conn, child, ids, counts)


def _insert(conn: Connection, table: Table, lead: tuple, leads: list, columns: tuple, values: list) -> None:
    """Insert rows straight through the driver: SQLAlchemy's per-row parameter processing cost more
    than the database's own work at 100,000 users (BENCHMARKS.md). `lead` are the id columns (the
    row's own, its owner's), `leads` their values per row (an id, or a pair); `values` the rest, as
    `_as_rows` made them: COPY's lines on PostgreSQL, which takes them with COPY, several times
    faster for the server than multi-row INSERTs; tuples on SQLite, which takes them with
    executemany. They hold what the driver stores (format.py: dates and times as their stored text,
    booleans, bytes). Parents come with their ids (from the sequence on PostgreSQL; on SQLite after
    the highest id, under the write lock this transaction holds), so children link to them without
    a read-back."""
    cursor = conn.connection.cursor()
    names = ", ".join((*lead, *columns))
    try:
        if _copies(conn):
            statement = f"COPY {table.name} ({names}) FROM STDIN"
            if len(lead) == 2:
                data = "".join([f"{i}\t{p}\t{line}" for (i, p), line in zip(leads, values)])
            else:
                data = "".join([f"{i}\t{line}" for i, line in zip(leads, values)])
            # In one piece: psycopg2 lets go of the interpreter lock for each piece it sends, and the
            # reading of the next chunk beside it (_Writer) would hold the lock for milliseconds each time.
            cursor.copy_expert(statement, io.StringIO(data), size=max(8192, len(data)))
        else:
            if len(lead) == 2:
                values = [(*pair, *row) for pair, row in zip(leads, values)]
            else:
                values = [(i, *row) for i, row in zip(leads, values)]
            statement = f"INSERT INTO {table.name} ({names}) VALUES ({', '.join('?' for _ in (*lead, *columns))})"
            cursor.executemany(statement, values)
    except conn.dialect.dbapi.Error as exc:  # worded by load_file, as SQLAlchemy's own errors are
        raise DBAPIError.instance(statement, None, exc, conn.dialect.dbapi.Error) from None
    finally:
        cursor.close()


def _copies(conn: Connection) -> bool:
    """Whether the database takes rows with COPY (PostgreSQL), as the lines `_as_rows` makes for it."""
    return conn.dialect.name == "postgresql"


_COPY_LINES: dict[tuple, Any] = {}


def _copy_lines(table: Table, columns: tuple):
    """A function from rows (tuples in the order of `columns`) to their lines of COPY's text format
    (tab-separated, \\N for NULL, backslash escapes, each ended by a newline), compiled per table
    and column list as straight-line Python like the format's checks."""
    key = (table.name, tuple(columns))
    make = _COPY_LINES.get(key)
    if make is not None:
        return make
    # Each line one f-string, built in one piece (joining the values with `+` made a string per
    # step); an f-string's expressions may hold no backslash before Python 3.12, so the escapes are names.
    parts = []
    for n, name in enumerate(columns):
        kind = table.c[name].type
        v = f"r[{n}]"
        if isinstance(kind, Boolean):
            parts.append(f"NULL if (v{n} := {v}) is None else 't' if v{n} else 'f'")
        elif isinstance(kind, LargeBinary):
            parts.append(f"NULL if (v{n} := {v}) is None else HEX + v{n}.hex()")
        elif isinstance(kind, (Integer, BigInteger)):
            parts.append(f"NULL if (v{n} := {v}) is None else v{n}")
        else:  # text, and dates and times as their stored text
            # isprintable is false for a tab, newline or carriage return (and a few rarer characters,
            # escaped as they are): two C calls, cheaper than a regular expression's search per value.
            parts.append(f"NULL if (v{n} := {v}) is None else v{n} if v{n}.isprintable() and BACKSLASH not in v{n} "
                         f"else _escape(v{n})")
    line = "\\t".join("{" + part + "}" for part in parts)
    source = f'def copy_lines(rows):\n    return [f"{line}\\n" for r in rows]\n'
    env = {"_escape": _copy_escape, "NULL": "\\N", "HEX": "\\\\x", "BACKSLASH": "\\"}
    exec(compile(source, f"<copy {table.name}>", "exec"), env)  # noqa: S102 - generated from the schema
    make = _COPY_LINES[key] = env["copy_lines"]
    return make


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_escape(value: str) -> str:
    return value.translate(_COPY_ESCAPES)


def _allocate_ids(conn: Connection, table: Table, count: int) -> list[int]:
    if conn.dialect.name == "postgresql":
        # The sequence found once (materialised): as nextval's argument pg_get_serial_sequence ran
        # for every row, a catalog look-up each (0.7 s of the server's CPU for 100,000 users; 0.07 s).
        query = text("WITH s AS MATERIALIZED (SELECT pg_get_serial_sequence(:table, 'id')::regclass AS seq) "
                     "SELECT nextval(s.seq) FROM s, generate_series(1, :n)")
        return sorted(conn.execute(query, {"table": table.name, "n": count}).scalars())
    highest = _highest_id(conn, table)
    return list(range(highest + 1, highest + 1 + count))


def _highest_id(conn: Connection, table: Table) -> int:
    return conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar()


def _count_names() -> list[str]:
    return [segment.count_as for segment in all_segments()]
