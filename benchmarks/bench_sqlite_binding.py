"""What binding a row costs SQLite's driver, with and without the jobs' adapters for None and booleans
(tasks/db/engine.py, `_bind_plainly`): executemany of rows of 17 values into a table without indexes,
in one transaction that is rolled back, the best of `--runs` tries of each (the machine is shared:
the best is the least disturbed), the two kinds alternated.

    .venv/bin/python benchmarks/bench_sqlite_binding.py [--rows 30000] [--runs 9]
"""
from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tasks.db.engine import PLAIN_BINDINGS, dispose_engines, get_engine  # noqa: E402

WIDTH = 17
KINDS = {
    "17 None": (None,) * WIDTH,
    "17 booleans": (True, False) * 8 + (True,),
    "17 short texts": ("ACTIVE",) * WIDTH,
    "17 integers": (12345,) * WIDTH,
    # a loan of the demo's shape: texts, times as text, a few NULLs
    "a loan": ("L-000123", "39000001234567", "A title of a book", "2026-01-02 10:00:00", "2026-02-02 10:00:00",
               None, "ACTIVE", None, "MAIN", None, None, None, None, None, None, None, 1234),
}
ADAPTED = [(kind, sqlite3.PrepareProtocol) for kind in PLAIN_BINDINGS]


def _time(conn: sqlite3.Connection, rows: list[tuple]) -> float:
    conn.execute("BEGIN")
    started = time.thread_time()
    conn.executemany(f"INSERT INTO t VALUES ({', '.join('?' * WIDTH)})", rows)
    spent = time.thread_time() - started
    conn.execute("ROLLBACK")
    return spent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=30_000)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        engine = get_engine(f"sqlite:///{folder}/binding.db")   # registers the adapters
        ours = {key: sqlite3.adapters[key] for key in ADAPTED}
        raw = engine.raw_connection()
        conn = raw.driver_connection
        conn.execute(f"CREATE TABLE t ({', '.join(f'c{i}' for i in range(WIDTH))})")
        print(f"executemany of {args.rows:,} rows, best of {args.runs}, microseconds a row "
              f"(Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version})")
        print(f"{'row':<16} {'sqlite3 alone':>14} {'with adapters':>14}")
        for name, row in KINDS.items():
            rows = [row] * args.rows
            alone, adapted = [], []
            for _ in range(args.runs):
                for key in ADAPTED:
                    sqlite3.adapters.pop(key, None)
                alone.append(_time(conn, rows))
                sqlite3.adapters.update(ours)
                adapted.append(_time(conn, rows))
            print(f"{name:<16} {min(alone) / args.rows * 1e6:>14.2f} {min(adapted) / args.rows * 1e6:>14.2f}")
        raw.close()
        dispose_engines()


if __name__ == "__main__":
    main()
