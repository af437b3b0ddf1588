"""The benchmark's own pieces (benchmarks/run.py): running a flow as its own process, measured, and
growing a library by copying it. What the scale test shares with the benchmark (databases, the scenario,
the baselines, comparing outcomes) is in tasks/devtools/."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import text

from tasks.db.engine import dispose_engines, get_engine, write_transaction
from tasks.devtools.baselines import split_statements
from tasks.devtools.demo.builder import TABLES as DEMO_TABLES
from tasks.devtools.demo.ids import advance_id_sequences

ROOT = Path(__file__).resolve().parent.parent
REPLICATE_SQL = Path(__file__).resolve().parent / "sql" / "replicate_library.postgresql.sql"


@dataclass
class FlowRun:
    summary: dict[str, Any]
    seconds: float            # wall time of the whole command (launcher start to exit)
    flow_seconds: float       # the job's own time, started_at -> finished_at in job_runs
    peak_rss_mib: float
    flow_run_id: str | None


# A child's ru_maxrss counts the memory of the process it was started from: at exec the kernel keeps the
# larger of the two high-water marks, and the one before exec is the parent's (a fork's copy of it, or
# vfork's shared memory). A benchmark's own process may have just built the library (bench_duplicates:
# about 3.4 GiB at 1,000,000 people, which the first 1M measure reported as the command's). So a command
# is started by this small launcher, a few MiB, which writes its child's peak RSS (KiB) to argv[1]: that
# child starts from the launcher, and its peak is the command's own.
LAUNCHER = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[2:]); "
            "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
            "sys.exit(code)")


@dataclass
class Measured:
    returncode: int
    stdout: str
    stderr: str
    seconds: float                  # wall time, the launcher's start to the command's exit
    peak_rss_mib: float | None      # None when the command could not be started


def run_measured(command: list[str], env: dict[str, str], cwd: Path = ROOT) -> Measured:
    """`command` as a grandchild through LAUNCHER: its exit code, output, wall time and own peak RSS."""
    with tempfile.TemporaryDirectory(prefix="lumj-measured-") as work:
        peak_file = Path(work) / "peak_rss_kib"
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", LAUNCHER, str(peak_file), *command], cwd=cwd, env=env,
                              capture_output=True, text=True)
        seconds = time.perf_counter() - started
        peak_kib = int(peak_file.read_text()) if peak_file.exists() else None
    return Measured(done.returncode, done.stdout, done.stderr, seconds,
                    peak_kib / 1024 if peak_kib is not None else None)


def run_flow_process(url: str, args: list[str], env: dict[str, str] | None = None) -> FlowRun:
    """`python -m flows ARGS` against `url` as its own process (run_measured)."""
    done = run_measured([sys.executable, "-m", "flows", *args], {**os.environ, **(env or {}), "DATABASE_URL": url})
    if done.returncode != 0:
        raise RuntimeError(f"flows {' '.join(args)} exited {done.returncode}:\n{done.stderr[-4000:]}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    flow_seconds, flow_run_id = job_run_times(url, summary["run_id"])
    dispose_engines()
    return FlowRun(summary, done.seconds, flow_seconds, done.peak_rss_mib, flow_run_id)


def job_run_times(url: str, run_id: str) -> tuple[float, str | None]:
    with get_engine(url).connect() as conn:
        row = conn.execute(text("SELECT started_at, finished_at, flow_run_id FROM job_runs WHERE run_id = :r"),
                           {"r": run_id}).one()
    started, finished = (pd.Timestamp(v) for v in row[:2])
    return (finished - started).total_seconds(), row[2]


def replicate_library(url: str, copies: int) -> None:
    """Grow the library at `url` to `copies` times its size (PostgreSQL): see
    benchmarks/sql/replicate_library.postgresql.sql."""
    engine = get_engine(url)
    with write_transaction(engine) as conn:
        for statement in split_statements(REPLICATE_SQL.read_text(encoding="utf-8")):
            conn.execute(text(statement), {"copies": copies} if ":copies" in statement else {})
        advance_id_sequences(conn, DEMO_TABLES)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    dispose_engines()
