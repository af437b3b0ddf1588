"""`export --all` of a large library is made by two processes, every other chunk in the second, both
reading one snapshot of the library (tasks/alma/export.py, _SecondProcess). Chunks and the threshold
are made small here, so a few dozen users are many chunks."""
from __future__ import annotations

import io
import json
import os
import sqlite3
import threading
import time

import pytest
from sqlalchemy import text

from tasks.alma import export
from tasks.alma.export import export_users
from tasks.alma.load import load_files

from test_alma_load_chunks import user, write_lines

USERS = 30


@pytest.fixture
def library(engine, tmp_path, monkeypatch):
    load_files(engine, [str(write_lines(tmp_path, [user(n) for n in range(1, USERS + 1)]))])
    monkeypatch.setattr(export, "CHUNK", 4)                 # 8 chunks: 4 of them the second process's
    monkeypatch.setattr(export, "TWO_PROCESSES_FROM", 10)
    return engine


@pytest.fixture
def processes(monkeypatch):
    """How many second processes the exports started."""
    started = []
    real = export._SecondProcess.__init__

    def counted(self, *args):
        started.append(1)
        real(self, *args)

    monkeypatch.setattr(export._SecondProcess, "__init__", counted)
    return started


def _export(engine, fmt: str = "json") -> str:
    out = io.StringIO()
    export_users(engine, None, out, fmt)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_two_processes_write_what_one_writes_in_the_same_order(library, processes, monkeypatch, fmt):
    two = _export(library, fmt)
    monkeypatch.setattr(export, "TWO_PROCESSES_FROM", 10**9)
    one = _export(library, fmt)

    assert processes == [1]
    assert two == one
    if fmt == "json":
        assert [json.loads(line)["primary_id"] for line in two.splitlines()] == [f"c{n:03d}" for n in range(1, USERS + 1)]
    else:
        assert two.count("<user>") == USERS and two.rstrip().endswith("</users>")


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_file_gets_the_same_text_as_a_text_stream_names_in_any_script(library, tmp_path, fmt):
    """Standard output and files take the export's UTF-8 as bytes (export._bytes_writer); a text stream
    (io.StringIO) as text. Both hold the same, and what was written before the export stays first."""
    with library.begin() as conn:
        conn.execute(text("UPDATE users SET last_name = 'Ødegård-Šimůnek 李 ' || primary_id"
                          " WHERE primary_id IN ('c002', 'c007', 'c030')"))
    path = tmp_path / f"export.{fmt}"
    with path.open("w", encoding="utf-8") as out:
        out.write("# before\n")  # buffered as text when the export begins
        export_users(library, None, out, fmt)

    written = path.read_text(encoding="utf-8")
    assert written == "# before\n" + _export(library, fmt)
    assert written.count("Ødegård-Šimůnek 李 ") == 3
    if fmt == "json":
        lines = written.splitlines()[1:]
        assert [json.loads(line)["last_name"] for line in lines][1] == "Ødegård-Šimůnek 李 c002"


def test_both_processes_read_the_library_as_it_was_when_the_export_began(library, processes, monkeypatch, tmp_path):
    """A change committed by another session once the export has begun is in none of its chunks. The
    second process is held back until the change is in (or, where SQLite's writers must wait for it
    to begin its reading, for two seconds), so without one shared snapshot it would read the change."""
    parent, change_in = os.getpid(), tmp_path / "changed"
    writer = threading.Thread(target=_change, args=(library, change_in))
    real_descriptions, real_in_forked_process = export.descriptions, export.in_forked_process

    def descriptions(conn, table):
        found = real_descriptions(conn, table)   # the export's first read: its snapshot is taken
        if not writer.is_alive() and not change_in.exists():
            writer.start()
            if conn.dialect.name == "postgresql":
                # Committed before the fork: a fork while this thread is inside libpq's connect left
                # the child waiting for a lock nobody would let go (a CI run hung on it). SQLite's
                # writer must wait for the export's hold, so it is still at work at the fork.
                writer.join()
        return found

    def in_forked_process(engine):
        deadline = time.monotonic() + 2
        while not change_in.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return real_in_forked_process(engine)

    monkeypatch.setattr(export, "descriptions", descriptions)
    monkeypatch.setattr(export, "in_forked_process", in_forked_process)
    exported = {u["primary_id"]: u for u in map(json.loads, _export(library).splitlines())}
    writer.join()

    assert processes == [1]
    assert change_in.exists()
    # c006 is in a chunk of the second process, c010 in one of the first.
    assert exported["c006"]["last_name"] == "Name 6" and exported["c010"]["last_name"] == "Name 10"
    again = {u["primary_id"]: u for u in map(json.loads, _export(library).splitlines())}
    assert again["c006"]["last_name"] == again["c010"]["last_name"] == "Changed"


def _change(engine, done) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE users SET last_name = 'Changed' WHERE primary_id IN ('c006', 'c010')"))
    done.touch()


def test_a_failure_in_the_second_process_fails_the_export_with_its_reason(library, monkeypatch):
    parent, real_render = os.getpid(), export._render

    def render(conn, ids, descs, fmt):
        if os.getpid() != parent:
            raise LookupError("the second process's chunk could not be made")
        return real_render(conn, ids, descs, fmt)

    monkeypatch.setattr(export, "_render", render)
    with pytest.raises(RuntimeError, match="could not be made"):
        _export(library)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_while_a_writer_holds_sqlite_the_export_is_made_by_one_process(library, processes, db_url):
    expected = _export(library)
    writer = sqlite3.connect(library.url.database, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        assert _export(library) == expected
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert processes == [1]   # the first export's, not the second's


def _one_process_export(engine, monkeypatch) -> str:
    with monkeypatch.context() as m:
        m.setattr(export, "TWO_PROCESSES_FROM", 10**9)
        return _export(engine)


def test_a_second_process_that_never_begins_is_given_up_and_the_export_is_whole(library, monkeypatch, caplog):
    """A forked process can hang for good before it begins (a fork while another thread held a lock of
    the driver): the export waits a bounded time, ends it and makes every chunk itself."""
    expected = _one_process_export(library, monkeypatch)
    parent, real_in_forked_process = os.getpid(), export.in_forked_process

    def hangs(engine):
        if os.getpid() != parent:
            time.sleep(3600)
        return real_in_forked_process(engine)

    monkeypatch.setattr(export, "in_forked_process", hangs)
    monkeypatch.setattr(export._SecondProcess, "READY_SECONDS", 1.0)
    gone = []
    real_end = export._SecondProcess._end

    def end(self):
        process = self.process
        real_end(self)
        if process is not None:
            gone.append(process)

    monkeypatch.setattr(export._SecondProcess, "_end", end)
    started = time.monotonic()
    with caplog.at_level("WARNING", logger="tasks.alma.export"):
        assert _export(library) == expected
    assert time.monotonic() - started < 30
    assert len(gone) == 1 and not gone[0].is_alive()
    assert "did not begin its reading within 1 s" in caplog.text


def test_a_chunk_the_second_process_does_not_make_in_time_is_made_by_this_one(library, monkeypatch, caplog):
    expected = _one_process_export(library, monkeypatch)
    parent, real_render = os.getpid(), export._render
    made = []

    def render(conn, ids, descs, fmt):
        if os.getpid() != parent:
            made.append(ids)
            if len(made) == 2:  # its second chunk (the export's chunk 3) never comes
                time.sleep(3600)
        return real_render(conn, ids, descs, fmt)

    monkeypatch.setattr(export, "_render", render)
    monkeypatch.setattr(export._SecondProcess, "CHUNK_SECONDS", 1.0)
    with caplog.at_level("WARNING", logger="tasks.alma.export"):
        assert _export(library) == expected
    assert "did not make chunk 3 within 1 s" in caplog.text
