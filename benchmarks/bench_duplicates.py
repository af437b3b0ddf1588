"""Find Duplicate Users, measured with the command: a noisy library (tasks/devtools/noisy) of N people in a
fresh library database, then `python -m flows find-duplicates --export FILE --json` in a child process
(wall time, the run's own time from job_runs, peak RSS of the child), and the exported clusters scored
against the truth (table noisy_truth): precision and recall of pairs joined transitively, recall per
duplicate kind, look-alikes joined.

    .venv/bin/python -m benchmarks.bench_duplicates --people 100000 --seed 2 [--mix hard] [--url URL] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import pandas as pd
from sqlalchemy import select

from tasks.db.engine import get_engine
from tasks.db.schema import job_runs
from tasks.devtools.databases import drop_database
from tasks.devtools.noisy.load import make_noisy_library, read_truth
from tasks.devtools.noisy.truth import evaluate
from tasks.library.init_db import init_db


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--mix", default="default", choices=["default", "hard"])
    ap.add_argument("--url", help="an empty library database (default: a new SQLite file)")
    ap.add_argument("--min-probability", default=None)
    ap.add_argument("--json", dest="out")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-dup-")
    url = args.url or f"sqlite:///{work}/library.db"
    engine = get_engine(url)
    init_db(engine)
    started = time.perf_counter()
    make_noisy_library(engine, args.people, args.seed, args.mix)
    load_s = time.perf_counter() - started
    export = os.path.join(work, "pairs.csv")
    command = [sys.executable, "-m", "flows", "find-duplicates", "--export", export, "--json"]
    if args.min_probability:
        command += ["--min-probability", args.min_probability]
    started = time.perf_counter()
    done = subprocess.run(command, env={**os.environ, "DATABASE_URL": url}, capture_output=True, text=True)
    wall_s = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"find-duplicates failed ({done.returncode}): {done.stderr[-2000:]}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    with engine.connect() as conn:
        row = conn.execute(select(job_runs.c.started_at, job_runs.c.finished_at)
                           .where(job_runs.c.run_id == summary["run_id"])).one()
    truth = read_truth(engine)
    found = pd.read_csv(export, dtype=str)
    ids = {f"P{u}": int(u) for u in truth["user_id"]}
    cluster_of = {ids[p]: int(c) for c, a, b in zip(found["cluster"], found["from_user"], found["to_user"])
                  for p in (a, b)}
    quality = evaluate(truth, cluster_of)
    result = {
        "people": args.people, "seed": args.seed, "mix": args.mix, "database": url.split(":")[0],
        "users": summary["users_scanned"], "pairs_found": summary["pairs_found"], "clusters": summary["clusters"],
        "load_library_s": round(load_s, 1), "command_wall_s": round(wall_s, 1),
        "run_s": round((row.finished_at - row.started_at).total_seconds(), 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        "load_avg": os.getloadavg()[0],
        **{k: quality[k] for k in ("precision", "recall", "true_pairs", "predicted_pairs", "wrong_pairs")},
        "recall_by_kind": {k: v["recall"] for k, v in quality["recall_by_kind"].items()},
        "lookalikes_joined": quality["lookalikes_joined"],
    }
    print(json.dumps(result, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    if not args.url:
        drop_database(url)


if __name__ == "__main__":
    main()
