"""One real run of a job at a time: a lock held for the whole run, which the operating system or the
database server releases by itself when the process dies (so a killed run never blocks the next one).

- PostgreSQL: a session-level advisory lock on a dedicated autocommit connection. The server drops it
  when that session ends, including when the client process is killed.
- SQLite: an exclusive, non-blocking `flock` on a lock file beside the database file. The kernel drops it
  when the file descriptor is closed, including on SIGKILL.

Dry runs change nothing and never take the lock. Different jobs do not exclude each other: each batch
re-checks its guards under row locks, so a purge and a waive at once are safe; two purges at once would
only race for the same users and make the report of one of them wrong.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from tasks.errors import JobRefused

# The advisory lock namespace: the first 8 bytes of sha256(job name), as a signed 64-bit integer.
_KEY_PREFIX = "library-user-management-jobs:"


def advisory_key(job: str) -> int:
    digest = hashlib.sha256((_KEY_PREFIX + job).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_file_path(database_url: str, job: str) -> Path | None:
    """`library.db` -> `library.db.purge-user-records.lock`; None for an in-memory database."""
    database = make_url(database_url).database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(database).with_name(f"{Path(database).name}.{job}.lock")


def _refusal(job: str) -> JobRefused:
    return JobRefused(f"another real run of {job} is in progress on this database; nothing was changed. "
                      "Wait for it to finish (see `python -m flows history`) and run again.")


@contextlib.contextmanager
def _postgres_lock(engine: Engine, job: str) -> Iterator[None]:
    key = advisory_key(job)
    # Autocommit: the lock belongs to the session, and the session must not sit "idle in transaction"
    # (holding a snapshot) for the hours a large run may take.
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        if not conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar():
            raise _refusal(job)
    except BaseException:
        conn.close()
        raise
    try:
        yield
    finally:
        try:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        except Exception:  # noqa: BLE001 - a broken session has lost the lock anyway; never pool it
            conn.invalidate()
        conn.close()


@contextlib.contextmanager
def _sqlite_lock(database_url: str, job: str) -> Iterator[None]:
    path = lock_file_path(database_url, job)
    if path is None:  # an in-memory database is private to this process
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise _refusal(job) from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # for a curious operator only; the flock is the lock
        yield
    finally:
        os.close(fd)  # releases the flock


@contextlib.contextmanager
def job_lock(engine: Engine, database_url: str, job: str) -> Iterator[None]:
    """Hold the job's lock for the duration of the block, or raise JobRefused at once."""
    if engine.dialect.name == "postgresql":
        with _postgres_lock(engine, job):
            yield
    else:
        with _sqlite_lock(database_url, job):
            yield
