"""Progress of a job run: what the engine tells a listener (recorded, no terminal needed), when the CLI
draws a bar (never with --json, never when stderr is not a terminal), and the bar itself on a pty."""
from __future__ import annotations

import datetime as dt
import io
import os
import time

import pytest

from tasks.cli.progress_bar import ProgressBar, progress_wanted, terminal_progress
from tasks.engine import progress


class Recorder:
    def __init__(self):
        self.calls: list[tuple] = []

    def started(self, phase, total, unit):
        self.calls.append(("started", phase, total, unit))

    def advanced(self, n):
        self.calls.append(("advanced", n))

    def finished(self):
        self.calls.append(("finished",))


# ------------------------------------------------------------------ the listener interface


def test_with_nobody_listening_progress_is_a_no_op():
    with progress.phase("selecting", None, "users"):
        progress.advanced(5)
    assert progress._listener.get() is progress.NOBODY


def test_a_listener_hears_phases_and_units_and_is_gone_afterwards():
    recorder = Recorder()
    with progress.listening(recorder):
        with progress.phase("applying batches", 10, "users"):
            progress.advanced(4)
            progress.advanced(6)
    progress.advanced(1)   # nobody listens any more
    assert recorder.calls == [("started", "applying batches", 10, "users"), ("advanced", 4), ("advanced", 6),
                              ("finished",)]


def test_a_phase_that_fails_still_finishes():
    recorder = Recorder()
    with progress.listening(recorder), pytest.raises(RuntimeError):
        with progress.phase("applying batches", 3, "pairs"):
            raise RuntimeError("batch 1 failed")
    assert recorder.calls[-1] == ("finished",)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_real_run_reports_selection_then_every_committed_batch(db_url, engine, prefect_api):
    from flows.purge_users import purge_user_records
    from tasks.devtools.demo import make_demo_library

    make_demo_library(engine, users=200, seed=42)
    recorder = Recorder()
    with progress.listening(recorder):
        summary = purge_user_records(as_of=dt.date(2026, 12, 20), dry_run=False,
                                                                batch_size=10)
    purged = summary["purged"]
    assert purged > 10   # several batches
    phases = [c for c in recorder.calls if c[0] != "advanced"]
    assert phases == [("started", progress.SELECTING, None, "users"), ("finished",),
                      ("started", progress.APPLYING, purged, "users"), ("finished",)]
    steps = [c[1] for c in recorder.calls if c[0] == "advanced"]
    assert sum(steps) == purged and len(steps) == -(-purged // 10)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_dry_run_reports_only_its_selection(db_url, engine, prefect_api):
    from flows.purge_users import purge_user_records
    from tasks.devtools.demo import make_demo_library

    make_demo_library(engine, users=50, seed=42)
    recorder = Recorder()
    with progress.listening(recorder):
        purge_user_records(as_of=dt.date(2026, 12, 20))
    assert recorder.calls == [("started", progress.SELECTING, None, "users"), ("finished",)]


# ------------------------------------------------------------------ when the CLI draws a bar


class Tty(io.StringIO):
    def isatty(self):
        if self.closed:
            raise ValueError("I/O operation on closed file")   # as a real file does
        return True


def test_a_bar_only_for_a_terminal_and_never_with_json():
    assert progress_wanted(json_output=False, stream=Tty()) is True
    assert progress_wanted(json_output=True, stream=Tty()) is False
    assert progress_wanted(json_output=False, stream=io.StringIO()) is False   # a file, a pipe, a CI log
    closed = Tty()
    closed.close()
    assert progress_wanted(json_output=False, stream=closed) is False
    assert progress_wanted(json_output=False, stream=None) is progress_wanted(json_output=False)


def test_disabled_terminal_progress_listens_to_nothing():
    with terminal_progress(False):
        assert progress._listener.get() is progress.NOBODY


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_cli_run_with_json_draws_no_bar(db_url, cli, monkeypatch):
    """Even with stderr a terminal, --json means no bar: the CLI passes its decision on."""
    import tasks.cli.progress_bar as progress_bar

    seen = []
    real = progress_bar.terminal_progress
    monkeypatch.setattr(progress_bar, "terminal_progress", lambda enabled, **kw: seen.append(enabled) or real(enabled, **kw))
    monkeypatch.setattr(progress_bar.sys, "stderr", Tty())
    code, _, _ = cli("purge", "--as-of", "2026-12-20", "--json")
    assert code == 0 and seen == [False]
    code, _, _ = cli("purge", "--as-of", "2026-12-20")
    assert code == 0 and seen == [False, True]


# ------------------------------------------------------------------ the bar on a pseudo-terminal


@pytest.fixture
def pty_stream():
    master, slave = os.openpty()
    stream = os.fdopen(slave, "w")
    os.set_blocking(master, False)

    def drawn() -> str:
        stream.flush()
        out = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except BlockingIOError:
                return out.decode(errors="replace")
            if not chunk:
                return out.decode(errors="replace")
            out += chunk

    yield stream, drawn
    stream.close()
    os.close(master)


def test_the_bar_shows_phase_units_and_percentage_after_the_delay(pty_stream):
    stream, drawn = pty_stream
    with terminal_progress(True, delay=0.2, stream=stream):
        bar = progress._listener.get()
        assert isinstance(bar, ProgressBar)
        progress.started(progress.APPLYING, 200, "users")
        progress.advanced(50)
        assert not bar.shown
        time.sleep(0.6)
        assert bar.shown
        bar._progress.refresh()
        screen = drawn()
        progress.finished()
    assert "applying batches" in screen and "50/200 users" in screen and "25%" in screen


def test_a_phase_shorter_than_the_delay_draws_nothing(pty_stream):
    stream, drawn = pty_stream
    with terminal_progress(True, delay=0.5, stream=stream):
        bar = progress._listener.get()
        with progress.phase(progress.SELECTING, None, "users"):
            pass
        time.sleep(0.7)
        assert not bar.shown
    assert drawn() == ""
