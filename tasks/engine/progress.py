"""Progress of a job run, told to whoever listens: the engine says when a phase starts, how many
units are done, and when the phase ends; a listener (the CLI's progress bar, a test's recorder)
decides what to make of it. The engine knows no terminal, and with nobody listening every call is
a no-op.

    with progress.phase("applying batches", total=1200, unit="users"):
        ...
        progress.advanced(500)          # after each committed batch

    with progress.listening(my_listener):
        run the flow                    # in this thread and the contexts copied from it
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Protocol

SELECTING = "selecting"
APPLYING = "applying batches"


class ProgressListener(Protocol):
    def started(self, phase: str, total: int | None, unit: str) -> None:
        """A phase began; `total` units are to be done (None when not known yet)."""

    def advanced(self, n: int) -> None:
        """`n` more units of the current phase are done."""

    def finished(self) -> None:
        """The current phase ended (completed or not)."""


class _Nobody:
    def started(self, phase: str, total: int | None, unit: str) -> None:
        pass

    def advanced(self, n: int) -> None:
        pass

    def finished(self) -> None:
        pass


NOBODY: ProgressListener = _Nobody()
_listener: ContextVar[ProgressListener] = ContextVar("job_progress_listener", default=NOBODY)


@contextlib.contextmanager
def listening(listener: ProgressListener) -> Iterator[ProgressListener]:
    """Send the progress of what runs inside to `listener`."""
    token = _listener.set(listener)
    try:
        yield listener
    finally:
        _listener.reset(token)


def started(phase: str, total: int | None, unit: str) -> None:
    _listener.get().started(phase, total, unit)


def advanced(n: int) -> None:
    _listener.get().advanced(n)


def finished() -> None:
    _listener.get().finished()


@contextlib.contextmanager
def phase(name: str, total: int | None, unit: str) -> Iterator[None]:
    """started(...) now, finished() on the way out, whatever happens inside."""
    started(name, total, unit)
    try:
        yield
    finally:
        finished()
