"""Crash anywhere: a real job on a few thousand users is killed with SIGKILL at seeded points
(right after start, during selection, in the middle of the batches); the database must satisfy every
invariant at the moment of death, and after a rerun it must equal the database of a run that was
never interrupted."""
from __future__ import annotations

import csv
import json
import random
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.reliability.conftest import TODAY, start_cli
from tests.reliability.invariants import (Snapshot, common_errors, differences, merge_errors, purge_errors,
                                          snapshot, waive_errors)

SEED = 1729
KILL_POINTS = ("during selection", "in the first half of the batches", "in the second half of the batches")


@dataclass
class CrashCase:
    job: str                       # job_runs.job
    args: Callable[[Path], list[str]]
    errors: Callable[[Snapshot, Snapshot], list[str]]
    progress_sql: str              # how much of the work is committed, as one number


def _merge_pairs(engine) -> list[tuple[int, int, str, str]]:
    """Duplicates in the demo library: same names and birth date, different primary ids (older -> newer)."""
    with engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT a.id, b.id, a.primary_id, b.primary_id FROM users a JOIN users b
              ON a.first_name = b.first_name AND a.last_name = b.last_name AND a.birth_date = b.birth_date
             AND a.id < b.id
            ORDER BY a.id, b.id""")).all()
    used: set[int] = set()
    pairs = []
    for a, b, pa, pb in rows:  # each user in at most one pair, so pairs are independent
        if a not in used and b not in used:
            used |= {a, b}
            pairs.append((int(b), int(a), pb, pa))
    return pairs


def _pairs_file(workdir: Path, engine) -> Path:
    path = workdir / "pairs.csv"
    if not path.exists():
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["from_user", "to_user"])
            writer.writerows((f, t) for _, _, f, t in _merge_pairs(engine))
    return path


COMMON = ["--confirm", "--batch-size", "50", "--json"]
CASES = {
    "purge": CrashCase(
        job="purge-user-records",
        args=lambda _: ["purge", "--as-of", TODAY.isoformat(), "--max-owed", "25", "--max-share", "1", *COMMON],
        errors=purge_errors,
        progress_sql="SELECT COUNT(*) FROM users WHERE purged_at IS NOT NULL",
    ),
    "waive": CrashCase(
        job="bulk-fine-waiving",
        args=lambda _: ["waive", "--as-of", TODAY.isoformat(), "--max-fine-threshold", "40", "--reason", "AMNESTY",
                        *COMMON],
        errors=waive_errors,
        progress_sql="SELECT COUNT(*) FROM fee_transactions WHERE type = 'WAIVE' AND reason = 'AMNESTY'",
    ),
    "merge": CrashCase(
        job="merge-users",
        args=lambda pairs: ["merge", "--pairs", str(pairs), "--no-copy-as-internal", "--segments", "all",
                            "--batch-size", "5", "--confirm", "--json"],
        errors=None,  # needs the pairs: set in the test
        progress_sql="SELECT COUNT(*) FROM job_events",
    ),
}


def _progress(engine, case: CrashCase) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(case.progress_sql)).scalar())


def _running_real_runs(engine, job: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT COUNT(*) FROM job_runs WHERE job = :job AND status = 'RUNNING'"),
                                {"job": job}).scalar())


def _wait_until(proc: subprocess.Popen, condition: Callable[[], bool], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if condition():
            return
        time.sleep(0.005)


def _kill(proc: subprocess.Popen) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err


@pytest.mark.parametrize("name", list(CASES))
def test_killed_run_leaves_a_consistent_library_and_a_rerun_finishes_it_exactly(
        name, demo_library, child_env, cli, monkeypatch, tmp_path):
    from tasks.db.engine import get_engine

    case = CASES[name]
    rng = random.Random(f"{SEED}-{name}-{demo_library.kind}")
    pairs_path = tmp_path / "pairs.csv"
    initial_url = demo_library.copy()
    initial = snapshot(get_engine(initial_url))
    errors = case.errors
    if name == "merge":
        ids = _merge_pairs(get_engine(initial_url))
        assert len(ids) >= 20, "the demo library should hold duplicates to merge"
        _pairs_file(tmp_path, get_engine(initial_url))
        errors = lambda before, after: merge_errors(before, after, [(f, t) for f, t, _, _ in ids])  # noqa: E731
    args = case.args(pairs_path)

    # The run nobody interrupted.
    monkeypatch.setenv("DATABASE_URL", initial_url)
    code, out, err = cli(*args)
    assert code == 0, err
    expected = snapshot(get_engine(initial_url))
    total = _progress(get_engine(initial_url), case)
    assert total >= 10, f"the {name} run should do real work on the demo library (progress {total})"
    assert not common_errors(get_engine(initial_url), initial) and not errors(initial, expected)

    for point in KILL_POINTS:
        url = demo_library.copy()
        engine = get_engine(url)
        proc = start_cli(args, child_env(url))
        if point == "during selection":
            _wait_until(proc, lambda: _running_real_runs(engine, case.job) > 0)
            at_least = 0
        else:
            half = total // 2
            at_least = rng.randint(1, half) if "first" in point else rng.randint(half + 1, max(half + 1, total * 2 // 3))
            _wait_until(proc, lambda: _progress(engine, case) >= at_least)
        code, err = _kill(proc)
        done = _progress(engine, case)
        where = f"{name} on {demo_library.kind}, killed {point} ({done} of {total} done)"
        assert code == -signal.SIGKILL, f"{where}: the run ended by itself ({code}) before the kill: {err}"
        if at_least:
            assert at_least <= done < total, f"{where}: the kill should land between batches"

        # At the moment of death: every unit all or nothing, the ledger balanced.
        at_death = snapshot(engine)
        assert common_errors(engine, initial) + errors(initial, at_death) == [], where

        # The rerun finishes the job, and the library is as if nothing had happened.
        monkeypatch.setenv("DATABASE_URL", url)
        code, out, err = cli(*args)
        assert code == 0, f"{where}: rerun failed: {err}"
        summary = json.loads(out)
        assert summary["dry_run"] is False
        after = snapshot(engine)
        assert common_errors(engine, initial) + errors(initial, after) == [], where
        assert differences(expected, after) == [], where
        with engine.connect() as conn:
            statuses = sorted(r[0] for r in conn.execute(
                text("SELECT status FROM job_runs WHERE job = :job"), {"job": case.job}))
        # A rerun of a pairs file reports the pairs merged before the kill as failed (USER_NOT_FOUND).
        finished = {"COMPLETED", "COMPLETED_WITH_FAILURES"} if name == "merge" else {"COMPLETED"}
        assert statuses[0] in finished and statuses[1:] == ["INTERRUPTED"], f"{where}: job runs {statuses}"
