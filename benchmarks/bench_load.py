"""How fast `load` and `export --all` are for a library of the demo's shape, through the Alma format:

1. `demo-data --users N` into a source database (or `--source-db URL` to reuse one already built);
2. `export --all` of it to a JSON Lines file (timed: export from the demo library);
3. `load` of that file into a fresh database (timed), then `export --all` of what was loaded (timed).

    .venv/bin/python benchmarks/bench_load.py [--users N] [--source-db sqlite:///demo.db]
        [--postgres postgresql+psycopg2://…/scratch]

Steps 3 runs on SQLite and, with --postgres, on a scratch PostgreSQL database (emptied first: the
script drops and re-creates the library tables there). Peak memory (max RSS of this process) is
printed per step; CPU is this process's, and that of its second process apart (load checks a file
above 256 KB in a second process; export --all of 20,000 users or more makes half the chunks in one),
and on PostgreSQL (a local server) that of the whole server (/proc: all its processes, those that ended
during the step too, read before and after each step).
`--skip-sqlite` times PostgreSQL alone.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from benchmarks.proc import server_cpu_seconds  # noqa: E402

from tasks.alma.export import export_users  # noqa: E402
from tasks.alma.load import load_files  # noqa: E402
from tasks.db.engine import dispose_engines, get_engine, mask_url  # noqa: E402
from tasks.db.schema import metadata  # noqa: E402
from tasks.library.init_db import init_db  # noqa: E402


class _Sink:
    """Output thrown away, with bytes beneath it as standard output has (export writes to those)."""

    def __init__(self) -> None:
        self.buffer = self  # write() takes the bytes too

    def write(self, data: str | bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass


def _rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _server_cpu(engine) -> float | None:
    """CPU seconds so far of the PostgreSQL server (all its processes, those ended meanwhile too:
    proc.server_cpu_seconds). None if it cannot be read (a server on another machine)."""
    if engine is None:
        return None
    with engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    try:
        return server_cpu_seconds(pid)
    except OSError:
        return None


def _timed(label: str, fn, server=None):
    server_before = _server_cpu(server)
    started, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
    load_before = os.getloadavg()[0]
    result = fn()
    second = _children_cpu() - children
    wall = time.perf_counter() - started
    server_after = _server_cpu(server)
    on_server = (f" + {server_after - server_before:.1f} s in the server"
                 if server_before is not None and server_after is not None else "")
    print(f"  {label}: {wall:.1f} s (CPU {time.process_time() - cpu:.1f} s"
          + (f" + {second:.1f} s in the second process" if second >= 0.05 else "") + on_server
          + f", max RSS so far {_rss_mb():.0f} MB, load average {load_before:.1f} -> {os.getloadavg()[0]:.1f})",
          flush=True)
    return result


def bench(label: str, url: str, path: Path) -> None:
    engine = get_engine(url)
    if url.startswith("postgresql"):
        metadata.drop_all(engine)
        with engine.begin() as conn:  # else init_db would take the emptied database as already at head
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    init_db(engine)
    server = engine if url.startswith("postgresql") else None
    print(f"{label} ({mask_url(url)}):")
    counts = _timed("load", lambda: load_files(engine, [str(path)]), server)
    exported = _timed("export --all", lambda: export_users(engine, None, _Sink()), server)
    print(f"  max RSS of a second process so far {_rss_mb(resource.RUSAGE_CHILDREN):.0f} MB")
    print(f"  {counts['users']:,} users loaded ({counts['loans']:,} loans, {counts['fees']:,} fees), {exported:,} exported")
    dispose_engines()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--source-db", metavar="URL", help="a demo library already built (skips demo-data)")
    parser.add_argument("--postgres", metavar="URL", help="also time a scratch PostgreSQL database")
    parser.add_argument("--skip-sqlite", action="store_true", help="time PostgreSQL alone")
    parser.add_argument("--file", metavar="PATH", help="the JSON Lines file: exported there once, then reused")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        source = args.source_db
        if source is None:
            from tasks.devtools.demo import make_demo_library

            source = f"sqlite:///{tmp}/demo.db"
            engine = get_engine(source)
            init_db(engine)
            _timed(f"demo-data --users {args.users}", lambda: make_demo_library(engine, users=args.users, seed=42))
        path = Path(args.file) if args.file else Path(tmp) / "users.jsonl"
        print(f"demo library ({mask_url(source)}):")
        if not path.exists():
            with path.open("w", encoding="utf-8") as out:
                _timed("export --all to a file", lambda: export_users(get_engine(source), None, out))
        print(f"  {path.stat().st_size / 1e6:.0f} MB of JSON Lines")
        dispose_engines()
        if not args.skip_sqlite:
            bench("SQLite", f"sqlite:///{tmp}/bench.db", path)
        if args.postgres:
            bench("PostgreSQL", args.postgres, path)


if __name__ == "__main__":
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    main()
