"""Database faults: a dropped connection or a deadlock in one batch is retried (Prefect task retries)
and the run completes with every count right and nothing done twice; a batch that keeps failing fails
the run, whose report says which batches were committed and which were not; the committed ones stand
and a rerun finishes the job."""
from __future__ import annotations

import datetime as dt
import json
import threading

import psycopg2.errors
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError

import tasks.engine.batches
import tasks.purge.steps
from tasks.db.schema import job_runs
from tests.builders import add_user
from tests.reliability.conftest import TODAY
from tests.reliability.invariants import common_errors, purge_errors, snapshot

PURGE_ARGS = ["purge", "--confirm", "--as-of", TODAY.isoformat(), "--max-share", "1", "--max-owed", "50",
              "--batch-size", "2", "--json"]
USERS = [f"u{i}" for i in range(1, 7)]   # batches of two: (u1, u2), (u3, u4), (u5, u6)
POISONED = "u3"                          # the faults strike batch 2


def dropped_connection(conn) -> Exception:
    """On PostgreSQL a real one: the server ends the batch's session. On SQLite, what the driver raises."""
    if conn.dialect.name == "postgresql":
        try:
            conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        except DBAPIError as exc:
            return exc
        raise AssertionError("terminating our own session should have failed the statement")
    return OperationalError("UPDATE fees ...", {}, Exception("disk I/O error"), connection_invalidated=True)


def deadlock(conn) -> Exception:
    return OperationalError("UPDATE fees ...", {}, psycopg2.errors.DeadlockDetected("deadlock detected"))


def not_a_database_fault(conn) -> Exception:
    return IntegrityError("INSERT ...", {}, Exception("a bug, not a fault: retrying cannot help"))


@pytest.fixture
def library(engine):
    for name in USERS:
        add_user(engine, name, purge_date=TODAY - dt.timedelta(days=40), fees_owed=["2.50", "4.00"])
    add_user(engine, "borrower", purge_date=TODAY - dt.timedelta(days=40), active_loans=1)
    return snapshot(engine)


@pytest.fixture
def fault(monkeypatch, library):
    """Make the purge's apply fail in the batch holding POISONED, after it has done its writes (so a
    rollback is needed): `fault(make_error, times)`. Returns the attempts seen per batch."""
    monkeypatch.setattr(tasks.engine.batches, "apply_batch", tasks.engine.batches.apply_batch.with_options(retry_delay_seconds=0))
    attempts: dict[str, int] = {}
    guard = threading.Lock()
    real = tasks.purge.steps.apply_policy
    poisoned = library_ids(library, POISONED)

    def arm(make_error, times: int):
        attempts.clear()

        def apply_policy(conn, level, ids, purged_at=None):
            # The last of the batch's writes: a fault here needs the whole batch rolled back.
            reduced = real(conn, level, ids, purged_at=purged_at)
            if poisoned in ids:
                with guard:
                    attempts[POISONED] = attempts.get(POISONED, 0) + 1
                    strike = attempts[POISONED] <= times
                if strike:
                    raise make_error(conn)
            return reduced

        monkeypatch.setattr(tasks.purge.steps, "apply_policy", apply_policy)
        return attempts

    return arm


def _run_row(engine):
    with engine.connect() as conn:
        return conn.execute(select(job_runs.c.status, job_runs.c.report, job_runs.c.summary)
                            .order_by(job_runs.c.started_at.desc())).first()


def _purged(engine) -> set[int]:
    with engine.connect() as conn:
        ids = conn.execute(text("SELECT id FROM users WHERE purged_at IS NOT NULL")).scalars().all()
    return set(ids)


@pytest.mark.parametrize("make_error", [dropped_connection, deadlock], ids=["dropped-connection", "deadlock"])
def test_a_transient_fault_in_one_batch_is_retried_and_the_run_completes(engine, library, fault, cli, make_error):
    attempts = fault(make_error, times=1)
    code, out, err = cli(*PURGE_ARGS)

    assert code == 0, err
    summary = json.loads(out)
    assert (summary["purged"], summary["fines_waived"], summary["amount_waived"]) == (6, 12, "39.00")
    assert attempts[POISONED] == 2  # failed once, retried once
    after = snapshot(engine)
    assert common_errors(engine, library) + purge_errors(library, after) == []
    assert len(_purged(engine)) == 6
    with engine.connect() as conn:
        events = conn.execute(text("SELECT user_id, COUNT(*) FROM job_events WHERE event = 'USER_PURGED' "
                                   "GROUP BY user_id")).all()
    assert sorted(n for _, n in events) == [1] * 6  # the rolled-back attempt left no trace
    assert _run_row(engine).status == "COMPLETED"


def test_a_batch_that_keeps_failing_fails_the_run_with_a_report_of_what_stands(engine, library, fault, cli):
    attempts = fault(deadlock, times=99)
    code, out, err = cli(*PURGE_ARGS)

    assert code == 1 and out == ""
    assert "batch 2" in err and "deadlock" in err.lower()
    assert attempts[POISONED] == 4  # the first try and three retries, then it gives up
    status, report, summary = _run_row(engine)
    assert status == "FAILED"
    # Which batches stand is what the database shows: batch 2 never does; batch 3 may have run
    # beside it (PostgreSQL takes two batches at once) or not been started (SQLite, one at a time).
    purged = _purged(engine)
    by_batch = {n: {library_ids(library, f"u{2 * n - 1}"), library_ids(library, f"u{2 * n}")} for n in (1, 2, 3)}
    committed = [n for n, ids in by_batch.items() if ids <= purged]
    assert 1 in committed and 2 not in committed
    assert purged == set().union(*(by_batch[n] for n in committed))
    not_started = [n for n in (3,) if n not in committed]
    assert (f"{len(committed)} of 3 batches were committed (their changes stand): "
            f"{', '.join(map(str, committed))}; failed and rolled back: 2; "
            f"not started: {', '.join(map(str, not_started)) or 'none'}") in report
    assert json.loads(summary)["purged"] == 2 * len(committed)
    after = snapshot(engine)
    assert common_errors(engine, library) + purge_errors(library, after) == []

    # The fault is gone: the rerun finishes the job, doing nothing twice.
    fault(deadlock, times=0)
    code, out, err = cli(*PURGE_ARGS)
    assert code == 0, err
    assert json.loads(out)["purged"] == 6 - 2 * len(committed)
    assert len(_purged(engine)) == 6
    assert common_errors(engine, library) + purge_errors(library, snapshot(engine)) == []


def test_an_error_that_is_not_a_database_fault_is_not_retried(engine, library, fault, cli):
    attempts = fault(not_a_database_fault, times=99)
    code, _, err = cli(*PURGE_ARGS)
    assert code == 1 and "IntegrityError" in err
    assert attempts[POISONED] == 1
    assert _run_row(engine).status == "FAILED"


def library_ids(before, primary_id: str) -> int:
    return next(u for u, v in before.users.items() if v["primary_id"] == primary_id)


@pytest.mark.parametrize("error, transient", [
    (OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly")), True),
    (OperationalError("SELECT 1", {}, psycopg2.errors.DeadlockDetected("deadlock detected")), True),
    (OperationalError("SELECT 1", {}, Exception("database is locked")), True),
    (DBAPIError("SELECT 1", {}, Exception("connection reset"), connection_invalidated=True), True),
    (IntegrityError("INSERT", {}, Exception("duplicate key")), False),
    (ProgrammingError("SELECT", {}, Exception("syntax error")), False),
    (ValueError("a bug"), False),
])
def test_only_database_faults_count_as_transient(error, transient):
    assert tasks.engine.batches.is_transient(error) is transient
