"""How long `demo-data` takes: N users (default 100,000) on a fresh SQLite file and, given a server,
on a fresh PostgreSQL database.

    .venv/bin/python benchmarks/bench_demo_data.py [--users N] [--seed S]
        [--postgresql postgresql+psycopg2://USER@HOST:5432/postgres] [--skip-sqlite]

The PostgreSQL URL names a database the user may create databases from; the benchmark makes its own
scratch database next to it and drops it afterwards. Prints one markdown table row per database.
"""
from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tasks.db.engine import dispose_engines, get_engine, mask_url  # noqa: E402
from tasks.devtools.databases import create_pg_database, drop_database  # noqa: E402
from tasks.devtools.demo import make_demo_library  # noqa: E402
from tasks.library.init_db import init_db  # noqa: E402

TODAY = dt.date(2026, 12, 20)


def run(url: str, users: int, seed: int) -> dict:
    engine = get_engine(url)
    init_db(engine)
    started = time.perf_counter()
    counts = make_demo_library(engine, users=users, seed=seed, today=TODAY)
    seconds = time.perf_counter() - started
    dispose_engines()
    rows = sum(counts.values())
    return {"users": users, "rows": rows, "seconds": seconds, "rows_per_second": rows / seconds}


def bench_sqlite(users: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="lumj-bench-") as tmp:
        return run(f"sqlite:///{tmp}/library.db", users, seed)


def bench_postgresql(admin_url: str, users: int, seed: int) -> dict:
    url = create_pg_database(admin_url, f"lumj_bench_{uuid.uuid4().hex[:10]}")
    try:
        return run(url, users, seed)
    finally:
        dispose_engines()
        drop_database(url)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--postgresql", metavar="URL", help="a PostgreSQL server to benchmark too")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()

    results = []
    if not args.skip_sqlite:
        results.append(("SQLite", bench_sqlite(args.users, args.seed)))
    if args.postgresql:
        results.append((f"PostgreSQL ({mask_url(args.postgresql)})", bench_postgresql(args.postgresql, args.users, args.seed)))

    # ru_maxrss is the whole process's peak (KiB on Linux): an upper bound for each run.
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("| database | users | rows (all tables) | seconds | rows/s |")
    print("|---|---:|---:|---:|---:|")
    for label, r in results:
        print(f"| {label} | {r['users']:,} | {r['rows']:,} | {r['seconds']:.1f} | {r['rows_per_second']:,.0f} |")
    print(f"\npeak memory of the benchmark process: {peak_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
