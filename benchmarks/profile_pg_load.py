"""The PostgreSQL server's CPU per statement of a load (COPY, key look-up, id allocation, per table):
the backend's /proc/<pid>/stat read around each call (the server must be local). The scratch database
is emptied first, as bench_load.py does.

    .venv/bin/python benchmarks/profile_pg_load.py CODE_DIR postgresql+psycopg2://…/scratch FILE.jsonl

CODE_DIR holds the `tasks/` to measure (the worktree itself, or a copy of older code to compare).
"""
from __future__ import annotations

import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, sys.argv[1])
sys.path.append(str(Path(__file__).resolve().parent.parent))   # benchmarks/, after CODE_DIR's tasks/

from sqlalchemy import text  # noqa: E402

from benchmarks.proc import cpu_seconds  # noqa: E402
from tasks.alma import load  # noqa: E402
from tasks.db.engine import get_engine  # noqa: E402
from tasks.db.schema import metadata  # noqa: E402
from tasks.library.init_db import init_db  # noqa: E402

stats: dict = defaultdict(lambda: [0, 0.0, 0.0])  # (kind, table) -> calls, server CPU, wall
backends: dict[int, int] = {}


def backend_of(conn) -> int:
    key = id(conn.connection.dbapi_connection)
    if key not in backends:
        cursor = conn.connection.cursor()
        cursor.execute("SELECT pg_backend_pid()")
        backends[key] = cursor.fetchone()[0]
        cursor.close()
    return backends[key]


def timed(kind: str, fn):
    def call(conn, table, *args):
        pid = backend_of(conn)
        cpu_before, started = cpu_seconds(pid), time.perf_counter()
        result = fn(conn, table, *args)
        entry = stats[(kind, table.name)]
        entry[0] += 1
        entry[1] += cpu_seconds(pid) - cpu_before
        entry[2] += time.perf_counter() - started
        return result
    return call


def main() -> None:
    load._insert = timed("copy", load._insert)
    load._allocate_ids = timed("ids", load._allocate_ids)
    load._existing = timed("lookup", load._existing)
    engine = get_engine(sys.argv[2])
    metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    init_db(engine)
    started = time.perf_counter()
    load.load_files(engine, [sys.argv[3]])
    print(f"load {time.perf_counter() - started:.1f} s wall; backends {sorted(set(backends.values()))}")
    total = 0.0
    for (kind, name), (calls, server, wall) in sorted(stats.items(), key=lambda kv: -kv[1][1]):
        total += server
        print(f"  {kind:6s} {name:18s} {calls:4d} calls  server CPU {server:6.2f} s  wall {wall:6.2f} s")
    print(f"  total server CPU in these statements {total:.2f} s")


if __name__ == "__main__":
    main()
