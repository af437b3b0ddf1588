"""`export`: users in the Alma format (see tasks/alma/format.py), with their loans, requests and fees,
as JSON (the default) or as Alma's XML (`--format xml`, see tasks/alma/xml.py).

Users are read in chunks by id and each chunk's child rows with one `IN` query per table, so memory
stays flat however many users the library holds, and output starts before the last user is read.
"""
from __future__ import annotations

import contextlib
import json
import logging
import marshal
import multiprocessing
import queue
import sqlite3
import traceback
from collections import defaultdict
from typing import Any, Callable, Iterator, NamedTuple, TextIO

from sqlalchemy import Connection, Engine, Table, bindparam, func, select, type_coerce
from sqlalchemy.types import Date, DateTime, NullType

from tasks.alma import jsonio
from tasks.alma import xml as alma_xml
from tasks.alma.inbox import Inbox
from tasks.alma.nogc import cyclic_gc_paused
from tasks.alma.format import CONTACT_INFO, SEGMENTS, USER_FIELDS, ExportPlan, Segment, code_tables_used
from tasks.alma.format import export_plan, to_json
from tasks.library.codes import descriptions
from tasks.db.engine import in_forked_process, read_snapshot
from tasks.db.sql import sql_for
from tasks.errors import UserNotFound
from tasks.db.schema import users

CHUNK = 1000
FORMATS = ("json", "xml")

log = logging.getLogger(__name__)


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


_READINGS: dict[tuple[str, str], _Reading] = {}

# PostgreSQL's dates and times as the text SQLite stores (format.to_json's fast path reads it), made by
# the server: psycopg2's datetime object per value and its formatting back into text cost a tenth of
# the export. to_char's pattern does not depend on the session's DateStyle; the columns have no zone.
_PG_TEXT = {DateTime: "YYYY-MM-DD HH24:MI:SS.US", Date: "YYYY-MM-DD"}


def _raw(column, dialect: str):
    pattern = _PG_TEXT.get(type(column.type)) if dialect == "postgresql" else None
    if pattern is not None:
        return func.to_char(column, pattern).label(column.name)
    return type_coerce(column, NullType()).label(column.name)


def _reading(table: Table, fields: tuple, owner_column: str, dialect: str) -> _Reading:
    """Every column of `table`, raw: the driver's values without SQLAlchemy's result processing
    (format.to_json reads SQLite's stored text of dates and times and its 0/1 booleans; a datetime
    object per value cost a third of an export)."""
    reading = _READINGS.get((table.name, dialect))
    if reading is None:
        names = [c.name for c in table.c]
        owner = table.c[owner_column]
        query = select(*(_raw(c, dialect) for c in table.c)).order_by(owner, table.c.id)
        reading = _READINGS[(table.name, dialect)] = _Reading(
            query.where(owner.in_(bindparam("owners", expanding=True))),
            query.where(owner.between(bindparam("low"), bindparam("high"))),
            export_plan(fields, names), names.index("id"), names.index(owner_column))
    return reading


def export_users(engine: Engine, primary_ids: list[str] | None, out: TextIO, fmt: str = "json") -> int:
    """One id: one pretty JSON object (XML: one `<user>`). Several ids, or None for every user: JSON
    Lines (XML: `<users>`, one `<user>` a line). Purged users are not exported. Returns the number
    of users written. Everything written is one snapshot of the library, and `export --all` of a large
    library is made by two processes (_SecondProcess)."""
    if fmt not in FORMATS:
        from tasks.errors import InvalidInput
        raise InvalidInput(f"unknown export format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    hold = _WritersHeld.of(engine) if primary_ids is None and _SecondProcess.possible(engine) else None
    with contextlib.ExitStack() as stack:
        if hold is not None:
            stack.enter_context(hold)
        conn = stack.enter_context(read_snapshot(engine))
        stack.enter_context(cyclic_gc_paused())
        descs = {table: descriptions(conn, table) for table in code_tables_used()}
        if primary_ids is not None and len(primary_ids) == 1:
            ids = _resolve(conn, primary_ids)
            (document,) = _documents(conn, ids, descs)
            if fmt == "xml":
                alma_xml.write_user(document, out)
            else:
                out.write(json.dumps(document, ensure_ascii=False, indent=2, default=jsonio.default) + "\n")
            return 1
        second = None
        if primary_ids is None and (hold is None or hold.held) and _SecondProcess.worth_it(conn):
            second = stack.enter_context(_SecondProcess(engine, conn, descs, fmt))
        if hold is not None:
            hold.release()  # the second process has its snapshot (or was given up): the writers may go on
        chunks = _all_user_ids(conn) if primary_ids is None else _chunks(_resolve(conn, primary_ids))
        write = _bytes_writer(out)
        if fmt == "xml":
            write(alma_xml.USERS_HEAD)
        written = 0
        for number, ids in enumerate(chunks):
            text = second.chunk(number) if second is not None and number % 2 else None
            if text is None:  # this process's chunk, or one the second process did not make in time
                text = _render(conn, ids, descs, fmt)
            write(text)
            written += len(ids)
        if fmt == "xml":
            write(alma_xml.USERS_TAIL)
        return written


def _render(conn: Connection, ids: list[int], descs: dict, fmt: str) -> bytes:
    """The users `ids` as lines of the export in UTF-8: JSON Lines, or `<user>` elements."""
    documents = _documents(conn, ids, descs)
    return alma_xml.user_lines(documents) if fmt == "xml" else jsonio.dumps_lines(documents)


def _bytes_writer(out: TextIO) -> Callable[[bytes], None]:
    """Writes the export's UTF-8 to `out`: to the bytes beneath it when it has them (standard output, a
    file), so a chunk is not decoded into text and encoded again (a tenth of the CPU of `export --all`,
    BENCHMARKS.md), else as text (io.StringIO). Each piece is flushed: output comes as it is made."""
    buffer = getattr(out, "buffer", None)
    if buffer is None:
        def write(data: bytes) -> None:
            out.write(data.decode("utf-8"))
            out.flush()
        return write
    out.flush()  # what was written as text before comes first

    def write_bytes(data: bytes) -> None:
        buffer.write(data)
        buffer.flush()
    return write_bytes


# From this many users `export --all` is made by two processes: below it starting one costs more.
TWO_PROCESSES_FROM = 20 * CHUNK


class _WritersHeld:
    """SQLite's write lock, held by a connection of its own while the export's two processes begin
    their read transactions: no write can commit in between, so both read the same snapshot (SQLite
    cannot hand one transaction's snapshot to another connection, as PostgreSQL does). Taken only if
    it is free within a moment; else the export is made by one process."""

    WAIT_SECONDS = 0.5

    def __init__(self, database: str):
        self.database, self.lock, self.held = database, None, False

    @classmethod
    def of(cls, engine: Engine) -> "_WritersHeld | None":
        return cls(engine.url.database) if engine.dialect.name == "sqlite" else None

    def __enter__(self) -> "_WritersHeld":
        self.lock = sqlite3.connect(self.database, timeout=self.WAIT_SECONDS, isolation_level=None)
        try:
            self.lock.execute("BEGIN IMMEDIATE")
            self.held = True
        except sqlite3.OperationalError:  # a writer is at work: one process, in the reading's own snapshot
            pass
        return self

    def release(self) -> None:
        if self.lock is not None:
            if self.held:
                self.lock.execute("ROLLBACK")
            self.lock.close()
            self.lock, self.held = None, False

    def __exit__(self, *exc_info) -> None:
        self.release()


class _SecondProcess:
    """Every other chunk of `export --all` made in a second process (forked), in the same snapshot of
    the library (PostgreSQL: `pg_export_snapshot`; SQLite: begun while `_WritersHeld`), while this
    process makes the others: the export is CPU-bound in Python (reading the rows, building the
    documents, JSON), one core each. Its chunks come back as UTF-8 bytes through a pipe (`Inbox`, two at
    most read ahead); this process writes all of them in order.

    It is only a help, waited for a bounded time: a forked process can hang for good (a fork while
    another thread held a lock of the driver or of the C library, and nothing in the child lets it
    go), and an export must not hang with it. Not ready within READY_SECONDS, or a chunk not there
    within CHUNK_SECONDS of being wanted, the second process is ended and this one makes the rest
    of the chunks: in its own snapshot, the same one, so the output is the same, only later."""

    READY_SECONDS = 10.0   # fork, connect, begin its snapshot: a fraction of a second when well (on SQLite
                           # the library's writers wait meanwhile: _WritersHeld)
    CHUNK_SECONDS = 120.0  # a chunk of users is made in about the time this process makes its own

    @staticmethod
    def possible(engine: Engine) -> bool:
        if "fork" not in multiprocessing.get_all_start_methods():
            return False
        return engine.dialect.name == "postgresql" or engine.url.database not in (None, "", ":memory:")

    @staticmethod
    def worth_it(conn: Connection) -> bool:
        return conn.execute(sql_for(conn, "common/count_live_users")).scalar() >= TWO_PROCESSES_FROM

    def __init__(self, engine: Engine, conn: Connection, descs: dict, fmt: str):
        snapshot = (conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar()
                    if conn.dialect.name == "postgresql" else None)
        context = multiprocessing.get_context("fork")
        self.pipe, child_end = context.Pipe(duplex=False)
        self.process = context.Process(target=_export_in_child, args=(engine, snapshot, descs, fmt, child_end),
                                       name="alma-export", daemon=True)
        self.process.start()
        child_end.close()
        self.inbox = Inbox(self.pipe, ahead=2, name="alma-export-inbox")
        try:
            self._next(self.READY_SECONDS, "begin its reading")  # its transaction has begun: ("ready",)
        except BaseException:
            self.__exit__()
            raise

    def _next(self, seconds: float, what: str) -> tuple | None:
        """Its next message; None once it has been given up (not there within `seconds`)."""
        if self.process is None:
            return None
        try:
            data = self.inbox.get(timeout=seconds)
        except queue.Empty:
            log.warning("export: the second process did not %s within %.0f s; this process makes the rest of the "
                        "export alone", what, seconds)
            self._end()
            return None
        if data is None:
            raise RuntimeError("export: the process making half of the export ended without a word")
        message = marshal.loads(data)
        if message[0] == "failed":
            raise RuntimeError(f"export: {message[1]}")
        return message

    def chunk(self, number: int) -> bytes | None:
        """Chunk `number`'s UTF-8, made by the second process; None if it was given up."""
        message = self._next(self.CHUNK_SECONDS, f"make chunk {number}")
        if message is None:
            return None
        if message[:2] != ("chunk", number):
            raise RuntimeError(f"export: chunk {number} expected from the second process, got {message[:2]}")
        return message[2]

    def __enter__(self) -> "_SecondProcess":
        return self

    def __exit__(self, *exc_info) -> None:
        self._end()

    def _end(self) -> None:
        if self.process is None:
            return
        if self.process.is_alive():
            self.process.kill()  # done, or given up: what it still makes is not wanted
        self.process.join()
        self.inbox.close()
        self.pipe.close()
        self.process = None


def _export_in_child(engine: Engine, snapshot: str | None, descs: dict, fmt: str, pipe) -> None:
    try:
        with read_snapshot(in_forked_process(engine), imported=snapshot) as conn:
            pipe.send_bytes(marshal.dumps(("ready",)))
            with cyclic_gc_paused():
                for number, ids in enumerate(_all_user_ids(conn)):
                    if number % 2:
                        pipe.send_bytes(marshal.dumps(("chunk", number, _render(conn, ids, descs, fmt))))
        pipe.send_bytes(marshal.dumps(("end",)))
    except (BrokenPipeError, EOFError):
        pass  # the export gave up (its own error is the one reported)
    except BaseException:  # noqa: BLE001 - reported by the export, which raises it
        with contextlib.suppress(OSError):
            pipe.send_bytes(marshal.dumps(("failed", traceback.format_exc())))
    finally:
        pipe.close()



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
    reading = _reading(users, USER_FIELDS, "id", conn.dialect.name)
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
    reading = _reading(segment.table, segment.fields, segment.parent_column, conn.dialect.name)
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
