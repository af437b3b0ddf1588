"""How quickly the command line starts: `--help`, and a job command's time to its first SQL statement.

    .venv/bin/python benchmarks/startup.py [--runs 5] [--api-url http://127.0.0.1:4200/api]

`--help` is timed as a whole process. A job command (`purge --as-of 2026-12-20`, a dry run on a small
SQLite demo library made here) runs as its own process with a hook that notes, against the moment the
parent started it, when the first SQL statement is sent and when the job's selection
(sql/purge/select_candidates) is. With --api-url the command uses that running Prefect server (the
issue's condition); without, it starts its own temporary one. Prints the median of --runs.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

CHILD = r"""
import json, os, sys, time
from sqlalchemy import event
from sqlalchemy.engine import Engine
seen = {}
out = os.environ["LUMJ_STARTUP_OUT"]
@event.listens_for(Engine, "before_cursor_execute")
def _first(conn, cursor, statement, parameters, context, executemany):
    now = time.time()
    seen.setdefault("first_sql", now)
    if "purge_date" in statement and "selection" not in seen:
        seen["selection"] = now
        with open(out, "w") as f:
            json.dump(seen, f)
sys.argv = ["python -m flows", *sys.argv[1:]]
import runpy
runpy.run_module("flows", run_name="__main__")
"""


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--api-url", help="a running Prefect server's API (PREFECT_API_URL)")
    args = parser.parse_args()
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING"}
    helps = [timed([PYTHON, "-m", "flows", "--help"], env) for _ in range(args.runs)]
    print(f"python -m flows --help: median {statistics.median(helps):.2f} s ({', '.join(f'{t:.2f}' for t in helps)})")

    work = Path(tempfile.mkdtemp(prefix="lumj-startup-"))
    env["DATABASE_URL"] = f"sqlite:///{work / 'library.db'}"
    if args.api_url:
        env["PREFECT_API_URL"] = args.api_url
    subprocess.run([PYTHON, "-m", "flows", "demo-data", "--users", "200"], env=env, cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    firsts, selections = [], []
    for _ in range(args.runs):
        out = work / "seen.json"
        out.unlink(missing_ok=True)
        started = time.time()
        subprocess.run([PYTHON, "-c", CHILD, "purge", "--as-of", "2026-12-20", "--json"],
                       env={**env, "LUMJ_STARTUP_OUT": str(out)}, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        seen = json.loads(out.read_text())
        firsts.append(seen["first_sql"] - started)
        selections.append(seen["selection"] - started)
    where = f"Prefect server at {args.api_url}" if args.api_url else "its own temporary Prefect server"
    print(f"purge (dry run, {where}): first SQL statement after median {statistics.median(firsts):.2f} s "
          f"({', '.join(f'{t:.2f}' for t in firsts)}); the job's selection after median "
          f"{statistics.median(selections):.2f} s ({', '.join(f'{t:.2f}' for t in selections)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
