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
    seconds: float            # wall time of the whole command (interpreter start to exit)
    flow_seconds: float       # the job's own time, started_at -> finished_at in job_runs
    peak_rss_mib: float
    flow_run_id: str | None


def run_flow_process(url: str, args: list[str], env: dict[str, str] | None = None) -> FlowRun:
    """`python -m flows ARGS` against `url` as a child process; its peak RSS from wait4()."""
    child_env = {**os.environ, **(env or {}), "DATABASE_URL": url}
    started = time.perf_counter()
    # Output to files, not pipes: the child never blocks on a full pipe, and wait4() (which
    # communicate() would pre-empt) reaps it with its resource usage.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "flows", *args], cwd=ROOT, env=child_env,
                                stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"flows {' '.join(args)} exited {proc.returncode}:\n{stderr[-4000:]}")
    summary = json.loads(stdout.strip().splitlines()[-1])
    flow_seconds, flow_run_id = job_run_times(url, summary["run_id"])
    dispose_engines()
    return FlowRun(summary, seconds, flow_seconds, usage.ru_maxrss / 1024, flow_run_id)


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
