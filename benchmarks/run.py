"""The library-scale benchmark: the jobs against what the database itself can do.

    .venv/bin/python benchmarks/run.py --users 1000000
        [--database-url postgresql+psycopg2://postgres@127.0.0.1:5432/lumj_bench_1000000]
        [--merge-pairs 10000] [--replicate-from 100000] [--reuse] [--keep] [--no-write]
        [--jobs purge,waive,merge,anonymize] [--batch-size N]

Builds a demo library of N users (tasks/devtools/demo/: ~3 loans a user, most of them history; fees for
about one user in three; segments; ~2% duplicates) in its own database, then, each on a fresh clone of
it (CREATE DATABASE ... TEMPLATE, so every measurement starts from the same rows):

- the purge flow (real run, `python -m flows purge --max-owed 50.00 --confirm`) and its baseline,
  sql/baselines/purge.sql: the same work as hand-written set-based SQL in one transaction;
- the waive flow (`waive --max-fine-threshold 25.00 --reason AMNESTY --confirm`) and its baseline,
  sql/baselines/waive.sql;
- the anonymize flow (`anonymize --loan-days 365 --request-days 365 --fee-days 365 --confirm`) and its
  baseline, sql/baselines/anonymize.sql (only with `--jobs …,anonymize`);
- merging up to --merge-pairs duplicate pairs from a CSV (`merge --pairs FILE --confirm`).

After each flow the database must equal its baseline's (who is purged, what remains of them, every
fee and ledger row, the audit events, rows per table): the benchmark stops if not. Each flow runs as its
own process against a temporary Prefect server, so its peak resident memory is that process's, and its
Prefect task runs are counted. Prints the figures and writes them into BENCHMARKS.md (--no-write: don't).
--reuse keeps an already built library database of that name; --keep leaves it for the next --reuse.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import httpx  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from benchmarks import library_scale as scale  # noqa: E402
from tasks.devtools import baselines, databases, outcomes, scenario  # noqa: E402
from tasks.db.engine import dispose_engines, get_engine, mask_url  # noqa: E402

BENCHMARKS_MD = scale.ROOT / "BENCHMARKS.md"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrefectServer:
    """A throwaway Prefect API (its own PREFECT_HOME and SQLite database) for the benchmark's flow runs."""

    def __init__(self):
        self.home = tempfile.mkdtemp(prefix="lumj-bench-prefect-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.env = {"PREFECT_HOME": self.home, "PREFECT_API_URL": self.url,
                    "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
                    "PREFECT_LOGGING_LEVEL": "WARNING"}
        self.log = open(Path(self.home) / "server.log", "w")
        prefect = Path(sys.executable).with_name("prefect")
        self.proc = subprocess.Popen([str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
                                     env={**os.environ, **self.env}, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"the Prefect server did not start; see {self.log.name}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()
        shutil.rmtree(self.home, ignore_errors=True)


def library_exists(url: str) -> bool:
    try:
        with get_engine(url).connect() as conn:
            return bool(conn.execute(text("SELECT COUNT(*) FROM users")).scalar())
    except Exception:  # noqa: BLE001 - no database, no schema: not built
        return False
    finally:
        dispose_engines()


def prepare_library(url: str, users: int, reuse: bool, replicate_from: int | None) -> str | None:
    """Build the library and say how (None: the one already there is reused)."""
    if reuse and library_exists(url):
        return None
    databases.drop_database(url)
    started = time.perf_counter()
    if replicate_from:
        if databases.is_sqlite(url) or users % replicate_from:
            raise SystemExit("--replicate-from needs PostgreSQL and a library size that is a multiple of it")
        seed_url = make_url(url).set(database=f"lumj_bench_{replicate_from}").render_as_string(hide_password=False)
        if not (reuse and library_exists(seed_url)):
            databases.drop_database(seed_url)
            databases.create_pg_database(databases.pg_admin_url(url), make_url(seed_url).database)
            scenario.build_library(seed_url, replicate_from)
        databases.create_pg_database(databases.pg_admin_url(url), make_url(url).database,
                                 template=make_url(seed_url).database)
        scale.replicate_library(url, users // replicate_from)
        return (f"built as {users // replicate_from} copies of a {replicate_from:,}-user demo library "
                f"(--replicate-from) in {time.perf_counter() - started:.0f} s")
    if not databases.is_sqlite(url):
        databases.create_pg_database(databases.pg_admin_url(url), make_url(url).database)
    scenario.build_library(url, users)
    return f"built with make_demo_library in {time.perf_counter() - started:.0f} s"


class WalMeter:
    """What PostgreSQL wrote to its WAL and how many checkpoints it asked for while one side ran. A
    checkpoint makes the next change of every page write the whole page to the WAL again, so work spread
    over many transactions (the flow's batches) pays for each checkpoint falling inside it, work done in
    one statement per table (the baseline) hardly: max_wal_size decides how often that happens."""

    def __init__(self, url: str):
        self.engine = None if databases.is_sqlite(url) else get_engine(databases.pg_admin_url(url))

    def _now(self) -> tuple[int, int]:
        with self.engine.connect() as conn:
            conn.execute(text("CHECKPOINT"))  # each side starts with every page already written out
            wal = conn.execute(text("SELECT wal_bytes FROM pg_stat_wal")).scalar()
            return int(wal), int(conn.execute(text("SELECT checkpoints_req FROM pg_stat_bgwriter")).scalar())

    @contextlib.contextmanager
    def measure(self) -> Iterator[dict]:
        seen: dict = {}
        if self.engine is None:
            yield seen
            return
        wal, checkpoints = self._now()
        yield seen
        with self.engine.connect() as conn:
            seen["wal_gib"] = (int(conn.execute(text("SELECT wal_bytes FROM pg_stat_wal")).scalar()) - wal) / 2**30
            seen["checkpoints"] = int(conn.execute(text("SELECT checkpoints_req FROM pg_stat_bgwriter")).scalar()) \
                - checkpoints


@contextlib.contextmanager
def server_setting(url: str, name: str, value: str | None) -> Iterator[str | None]:
    """Run with a PostgreSQL server setting changed (ALTER SYSTEM; reload), put back afterwards; yields the
    value in force (None on SQLite)."""
    if databases.is_sqlite(url):
        yield None
        return
    admin = get_engine(databases.pg_admin_url(url)).execution_options(isolation_level="AUTOCOMMIT")

    def show() -> str:
        with admin.connect() as conn:
            return conn.execute(text(f"SHOW {name}")).scalar()

    if value is None:
        yield show()
        return
    with admin.connect() as conn:
        conn.execute(text(f"ALTER SYSTEM SET {name} = '{value}'"))
        conn.execute(text("SELECT pg_reload_conf()"))
    try:
        time.sleep(1)  # the reload reaches the checkpointer asynchronously
        yield show()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"ALTER SYSTEM RESET {name}"))
            conn.execute(text("SELECT pg_reload_conf()"))


def measure_job(url: str, job: str, server: PrefectServer, batch_size: int | None = None) -> dict:
    """The flow on one clone, the baseline on another; their outcomes must be equal."""
    args, baseline, params = {
        "purge": (scenario.PURGE_ARGS, "purge", baselines.purge_baseline_params()),
        "waive": (scenario.WAIVE_ARGS, "waive", baselines.waive_baseline_params()),
        "anonymize": (scenario.ANONYMIZE_ARGS, "anonymize", baselines.anonymize_baseline_params()),
    }[job]
    base_url = databases.clone_database(url, f"{job}_base")
    flow_url = databases.clone_database(url, f"{job}_flow")
    try:
        meter = WalMeter(url)
        print(f"[{job}] baseline ...", flush=True)
        with meter.measure() as base_wal:
            base = baselines.run_baseline(base_url, baseline, params)
        print(f"[{job}] baseline {base.seconds:.1f} s {base_wal}; flow ...", flush=True)
        with meter.measure() as flow_wal:
            flow = scale.run_flow_process(flow_url, [*args, *batch_args(batch_size)], server.env)
        print(f"[{job}] flow {flow.seconds:.1f} s (job {flow.flow_seconds:.1f} s), "
              f"peak RSS {flow.peak_rss_mib:.0f} MiB {flow_wal}; comparing ...", flush=True)
        diff = outcomes.differences(outcomes.snapshot(flow_url, job), outcomes.snapshot(base_url, job))
        if diff:
            raise SystemExit(f"[{job}] the flow's outcome differs from the baseline's:\n" + "\n".join(diff))
        task_runs = outcomes.count_task_runs(server.url, flow.flow_run_id) if flow.flow_run_id else None
    finally:
        databases.drop_database(base_url)
        databases.drop_database(flow_url)
    return {"flow": flow, "baseline_s": base.seconds, "task_runs": task_runs, "wal": (flow_wal, base_wal)}


def batch_args(batch_size: int | None) -> list[str]:
    return ["--batch-size", str(batch_size)] if batch_size else []


def measure_merge(url: str, pairs_wanted: int, server: PrefectServer, batch_size: int | None = None) -> dict | None:
    pairs = scenario.duplicate_pairs(url, pairs_wanted)
    if pairs.empty:
        return None
    merge_url = databases.clone_database(url, "merge")
    workdir = Path(tempfile.mkdtemp(prefix="lumj-bench-merge-"))
    try:
        csv_path = workdir / "pairs.csv"
        pairs[["from_user", "to_user"]].to_csv(csv_path, index=False)
        before = outcomes.held_by(merge_url, [*pairs["id_from"], *pairs["id_to"]])
        print(f"[merge] {len(pairs):,} pairs ...", flush=True)
        flow = scale.run_flow_process(merge_url, [*scenario.MERGE_ARGS, "--pairs", str(csv_path), *batch_args(batch_size)], server.env)
        problems = outcomes.merge_problems(merge_url, pairs, before, flow.summary)
        if problems:
            raise SystemExit("[merge] " + "; ".join(problems))
        task_runs = outcomes.count_task_runs(server.url, flow.flow_run_id) if flow.flow_run_id else None
        print(f"[merge] {flow.seconds:.1f} s (job {flow.flow_seconds:.1f} s)", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        databases.drop_database(merge_url)
    return {"flow": flow, "pairs": len(pairs), "task_runs": task_runs}


def machine() -> str:
    cores = os.cpu_count()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    database = "SQLite"
    if not databases.is_sqlite(BENCH_URL):
        with get_engine(databases.pg_admin_url(BENCH_URL)).connect() as conn:
            database = "PostgreSQL " + conn.execute(text("SHOW server_version")).scalar()
        dispose_engines()
    return f"{cores} cores, {memory:.0f} GiB RAM, {platform.system()} {platform.release()}, {database}"


def _wal(measured: dict) -> str:
    flow, base = measured["wal"]
    if not flow:
        return "–"
    return f"{flow['wal_gib']:.1f} / {base['wal_gib']:.1f} GiB, {flow['checkpoints']} / {base['checkpoints']}"


def render(users: int, built: str | None, purge: dict | None, waive: dict | None, merge: dict | None,
           started: dt.datetime, load: str, batch_size: int | None = None, anonymize: dict | None = None,
           max_wal_size: str | None = None) -> str:
    rows = []
    if purge:
        p, purged = purge["flow"], purge["flow"].summary["purged"]
        rows.append(("purge", f"{purged:,} users purged ({p.summary['fines_waived']:,} fees waived)", p.seconds,
                     p.flow_seconds, purge["baseline_s"], f"{purged / p.seconds:,.0f} users/s",
                     f"{purged / purge['baseline_s']:,.0f} users/s", p.peak_rss_mib, purge["task_runs"], _wal(purge)))
    if waive:
        w, fees = waive["flow"], waive["flow"].summary["fines_waived"]
        rows.append(("waive", f"{fees:,} fees of {w.summary['users_waived']:,} users", w.seconds, w.flow_seconds,
                     waive["baseline_s"], f"{fees / w.seconds:,.0f} fees/s", f"{fees / waive['baseline_s']:,.0f} fees/s",
                     w.peak_rss_mib, waive["task_runs"], _wal(waive)))
    if anonymize:
        a = anonymize["flow"]
        done = a.summary["loans_anonymized"] + a.summary["requests_anonymized"] + a.summary["fees_anonymized"]
        rows.append(("anonymize", f"{done:,} rows of {a.summary['users_affected']:,} users "
                     f"({a.summary['loans_anonymized']:,} loans, {a.summary['requests_anonymized']:,} requests, "
                     f"{a.summary['fees_anonymized']:,} fees)", a.seconds, a.flow_seconds, anonymize["baseline_s"],
                     f"{done / a.seconds:,.0f} rows/s", f"{done / anonymize['baseline_s']:,.0f} rows/s",
                     a.peak_rss_mib, anonymize["task_runs"], _wal(anonymize)))
    lines = [
        f"### {users:,} users — {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine()}" + (f", max_wal_size {max_wal_size}" if max_wal_size else "")
        + f"; load average at start {load}; batch size {batch_size or 'default'}. "
        + (f"Library {built}." if built else "Library reused from an earlier run of the benchmark (--reuse)."),
        "",
        "| job | work | flow s (command) | flow s (job) | baseline s | flow throughput | baseline throughput "
        "| flow/baseline (command / job) | peak RSS MiB | Prefect task runs | WAL written, checkpoints requested "
        "(flow / baseline) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for job, work, cmd_s, job_s, base_s, flow_tp, base_tp, rss, runs, wal in rows:
        lines.append(f"| {job} | {work} | {cmd_s:.1f} | {job_s:.1f} | {base_s:.1f} | {flow_tp} | {base_tp} "
                     f"| {base_s / cmd_s:.2f}× / {base_s / job_s:.2f}× | {rss:.0f} | {runs} | {wal} |")
    if merge:
        m = merge["flow"]
        lines.append(f"| merge | {merge['pairs']:,} pairs | {m.seconds:.1f} | {m.flow_seconds:.1f} | – "
                     f"| {merge['pairs'] / m.seconds:,.0f} pairs/s | – | – | {m.peak_rss_mib:.0f} | {merge['task_runs']} | – |")
    lines += ["", "Flow and baseline outcomes compared equal (users, fees, ledger, audit events, rows per table)."]
    return "\n".join(lines)


def write_results(users: int, block: str) -> None:
    """Replace this library size's block in BENCHMARKS.md (between its markers), or add it at the end."""
    begin, end = f"<!-- results:{users} -->", f"<!-- /results:{users} -->"
    current = BENCHMARKS_MD.read_text(encoding="utf-8") if BENCHMARKS_MD.exists() else "# Benchmarks\n"
    section = f"{begin}\n{block}\n{end}"
    if begin in current and end in current:
        current = re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda _: section, current, flags=re.DOTALL)
    else:
        current = current.rstrip("\n") + "\n\n" + section + "\n"
    BENCHMARKS_MD.write_text(current, encoding="utf-8")


BENCH_URL = ""


def main() -> int:
    global BENCH_URL
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--database-url", help="where to build the library (default: PostgreSQL on 127.0.0.1, "
                                               "database lumj_bench_<users>)")
    parser.add_argument("--merge-pairs", type=int, default=10_000)
    parser.add_argument("--jobs", default="purge,waive,merge",
                        help="which to measure (default: all three; anonymize is measured only when named)")
    parser.add_argument("--batch-size", type=int, help="the flows' --batch-size (default: the flows' own)")
    parser.add_argument("--reuse", action="store_true", help="use the library already built there")
    parser.add_argument("--replicate-from", type=int, metavar="M",
                        help="build M users with make_demo_library and copy them to N (PostgreSQL; much faster)")
    parser.add_argument("--keep", action="store_true", help="leave the library database for a later --reuse")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    parser.add_argument("--max-wal-size", metavar="SIZE",
                        help="PostgreSQL's max_wal_size during the measurements (e.g. 16GB; ALTER SYSTEM, put "
                             "back afterwards; default: the server's own)")
    args = parser.parse_args()
    BENCH_URL = args.database_url or f"postgresql+psycopg2://postgres@127.0.0.1:5432/lumj_bench_{args.users}"
    started = dt.datetime.now(dt.timezone.utc)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"library: {mask_url(BENCH_URL)}, {args.users:,} users", flush=True)
    built = prepare_library(BENCH_URL, args.users, args.reuse, args.replicate_from)
    print(built or "library reused", flush=True)
    server = PrefectServer()
    try:
        with server_setting(BENCH_URL, "max_wal_size", args.max_wal_size) as max_wal_size:
            jobs = set(args.jobs.split(","))
            purge = measure_job(BENCH_URL, "purge", server, args.batch_size) if "purge" in jobs else None
            waive = measure_job(BENCH_URL, "waive", server, args.batch_size) if "waive" in jobs else None
            anonymize = measure_job(BENCH_URL, "anonymize", server, args.batch_size) if "anonymize" in jobs else None
            merge = (measure_merge(BENCH_URL, args.merge_pairs, server, args.batch_size)
                     if "merge" in jobs and args.merge_pairs else None)
    finally:
        server.stop()
        if not args.keep:
            databases.drop_database(BENCH_URL)
    block = render(args.users, built, purge, waive, merge, started, load, args.batch_size, anonymize, max_wal_size)
    print("\n" + block)
    if not args.no_write:
        write_results(args.users, block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
