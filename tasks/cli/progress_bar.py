"""The CLI's progress bar: a rich bar on stderr for job runs that take more than a moment, showing
the phase (selecting, applying batches) and the units done of the total with a percentage. It
listens to tasks.engine.progress; it appears only once a phase has lasted `delay` seconds, and
leaves nothing behind on the terminal when it goes (transient).

    with terminal_progress(progress_wanted(json_output=args.json)):
        summary = flow(parameters=parameters)
"""
from __future__ import annotations

import contextlib
import io
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from typing import IO

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, SpinnerColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text

from tasks.engine import progress

SHOW_AFTER_SECONDS = 1.0


def progress_wanted(*, json_output: bool, stream: IO[str] | None = None) -> bool:
    """A bar only for a person watching: not with --json, not when stderr is a file, pipe or CI log."""
    stream = sys.stderr if stream is None else stream
    if json_output or stream is None:
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):   # no isatty, or a closed stream
        return False


@contextlib.contextmanager
def terminal_progress(enabled: bool, *, delay: float = SHOW_AFTER_SECONDS,
                      stream: IO[str] | None = None) -> Iterator[None]:
    """Show the progress of the job run inside on `stream` (stderr), when `enabled`."""
    if not enabled:
        yield
        return
    bar = ProgressBar(Console(file=sys.stderr if stream is None else stream), delay=delay)
    try:
        with progress.listening(bar):
            yield
    finally:
        bar.close()


class _Units(ProgressColumn):
    """`1,200/3,500 users 34%`, or `1,200 users` while the total is not known."""

    def render(self, task: Task) -> Text:
        unit = task.fields.get("unit", "")
        if task.total is None:
            return Text(f"{task.completed:,.0f} {unit}" if task.completed else "")
        return Text(f"{task.completed:,.0f}/{task.total:,.0f} {unit} {task.percentage:>3.0f}%")


class ProgressBar:
    """A tasks.engine.progress listener drawing one rich task per phase."""

    def __init__(self, console: Console, *, delay: float = SHOW_AFTER_SECONDS):
        self._progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), _Units(), TimeElapsedColumn(),
            console=console, transient=True, redirect_stdout=False, redirect_stderr=True,
            refresh_per_second=4,
        )
        self._delay = delay
        self._lock = threading.RLock()
        self._task = None
        self._timer: threading.Timer | None = None
        self._shown = False
        self._closed = False
        self._restore_logging: Callable[[], None] = lambda: None

    # -- the listener

    def started(self, phase: str, total: int | None, unit: str) -> None:
        with self._lock:
            self._drop_task()
            self._task = self._progress.add_task(phase, total=total, unit=unit)
            if not self._shown and not self._closed:
                self._cancel_timer()
                self._timer = threading.Timer(self._delay, self._show, args=(self._task,))
                self._timer.daemon = True
                self._timer.start()

    def advanced(self, n: int) -> None:
        with self._lock:
            if self._task is not None:
                self._progress.advance(self._task, n)

    def finished(self) -> None:
        with self._lock:
            self._drop_task()

    # -- showing and hiding

    @property
    def shown(self) -> bool:
        return self._shown

    def _show(self, task) -> None:
        with self._lock:
            if self._closed or self._shown or self._task != task:
                return   # closed, or that phase is over already: it took less than a moment
            original = self._progress.console.file
            self._progress.start()
            self._shown = True
            # Prefect's console log handler writes to the stderr it was given at start-up; while the
            # bar is drawn its lines are printed above the bar instead of over it.
            self._restore_logging = _reroute_log_handlers(original, self._progress.console)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._cancel_timer()
            if self._shown:
                self._restore_logging()
                self._progress.stop()

    def _drop_task(self) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _AboveTheBar(io.TextIOBase):
    """A stream whose lines are printed above the live bar, unwrapped (soft wrap, as Prefect prints its
    log lines). Not rich's own FileProxy: rich unwraps that (`rich_proxied_file`) when it is given to a
    Console as its file, and the lines would be written over the bar."""

    def __init__(self, console: Console, terminal: IO[str]):
        self._console, self._terminal = console, terminal
        self._pending = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            self._console.print(Text.from_ansi(line), soft_wrap=True)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            line, self._pending = self._pending, ""
        if line:
            self._console.print(Text.from_ansi(line), soft_wrap=True)

    def isatty(self) -> bool:
        return self._terminal.isatty()

    def writable(self) -> bool:
        return True


def _reroute_log_handlers(original: IO[str], console: Console) -> Callable[[], None]:
    """Point every logging handler that writes to `original` (and a rich console inside it, as
    Prefect's console handler has) above the bar of `console`; returns what puts them back."""
    above = _AboveTheBar(console, original)
    loggers = [logging.getLogger(), *(lg for lg in logging.Logger.manager.loggerDict.values()
                                      if isinstance(lg, logging.Logger))]
    undo: list[Callable[[], None]] = []
    seen: set[int] = set()
    for logger in loggers:
        for handler in logger.handlers:
            if id(handler) in seen or not isinstance(handler, logging.StreamHandler):
                continue
            seen.add(id(handler))
            if handler.stream is original:
                handler.setStream(above)
                undo.append(lambda h=handler: h.setStream(original))
            console = getattr(handler, "console", None)
            if isinstance(console, Console) and console.file is original:
                console.file = above
                undo.append(lambda c=console: setattr(c, "file", original))

    def restore() -> None:
        for step in reversed(undo):
            step()

    return restore
