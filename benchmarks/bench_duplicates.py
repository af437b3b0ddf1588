"""Find Duplicate Users, measured with the command: a noisy library (tasks/devtools/noisy) of N people in a
fresh library database, then `python -m flows find-duplicates --export FILE --json` in its own process
(benchmarks/library_scale.py, run_flow_process: wall time, the run's own time from job_runs, the command's
own peak RSS), and the exported clusters scored against the truth (table noisy_truth): precision and recall of pairs joined transitively, recall per
duplicate kind, look-alikes joined.

    .venv/bin/python -m benchmarks.bench_duplicates --people 100000 --seed 2 [--mix hard] [--url URL] [--json out.json]

With --url URL --reuse, a library this benchmark filled before (its truth in noisy_truth, the same number of
people) is scanned again as it is, instead of being built again (a 1,000,000-people library takes minutes to
build; the scan is a dry run, so it changes nothing); its load time is then reported as null.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import pandas as pd
from sqlalchemy import func, inspect, select

from benchmarks.library_scale import run_flow_process
from tasks.db.engine import get_engine
from tasks.devtools.databases import drop_database
from tasks.devtools.noisy.load import make_noisy_library, noisy_truth, read_truth
from tasks.devtools.noisy.truth import evaluate
from tasks.library.init_db import init_db


def _holds_library(engine, people: int) -> bool:
    """Whether the database holds a noisy library of this many people (its truth table)."""
    if not inspect(engine).has_table(noisy_truth.name):
        return False
    with engine.connect() as conn:
        return conn.execute(select(func.count(func.distinct(noisy_truth.c.person_id)))).scalar() == people


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--mix", default="default", choices=["default", "hard"])
    ap.add_argument("--url", help="an empty library database (default: a new SQLite file)")
    ap.add_argument("--reuse", action="store_true",
                    help="with --url: scan the noisy library already in it, if it holds one of --people people")
    ap.add_argument("--min-probability", default=None)
    ap.add_argument("--json", dest="out")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-dup-")
    url = args.url or f"sqlite:///{work}/library.db"
    engine = get_engine(url)
    init_db(engine)
    started = time.perf_counter()
    if args.reuse and args.url and _holds_library(engine, args.people):
        load_s = None
    else:
        make_noisy_library(engine, args.people, args.seed, args.mix)
        load_s = round(time.perf_counter() - started, 1)
    export = os.path.join(work, "pairs.csv")
    command = ["find-duplicates", "--export", export, "--json"]
    if args.min_probability:
        command += ["--min-probability", args.min_probability]
    try:
        done = run_flow_process(url, command)
    except RuntimeError as exc:
        sys.exit(f"find-duplicates failed: {exc}")
    summary = done.summary
    truth = read_truth(engine)
    found = pd.read_csv(export, dtype=str)
    ids = {f"P{u}": int(u) for u in truth["user_id"]}
    cluster_of = {ids[p]: int(c) for c, a, b in zip(found["cluster"], found["from_user"], found["to_user"])
                  for p in (a, b)}
    quality = evaluate(truth, cluster_of)
    result = {
        "people": args.people, "seed": args.seed, "mix": args.mix, "database": url.split(":")[0],
        "users": summary["users_scanned"], "pairs_found": summary["pairs_found"], "clusters": summary["clusters"],
        "load_library_s": load_s, "command_wall_s": round(done.seconds, 1),
        "run_s": round(done.flow_seconds, 1),
        "peak_rss_mib": round(done.peak_rss_mib),
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
