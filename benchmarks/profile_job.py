"""Where a job's time goes: one flow run, in this process, on a fresh clone of a benchmark library.

    .venv/bin/python benchmarks/profile_job.py waive [--users 1000000] [--batch-size N] [--py-spy]

Needs the library of benchmarks/run.py (`--keep`), e.g. lumj_bench_1000000. Runs the same command as
the benchmark (`python -m flows purge|waive ...`) through the CLI's own main(), against a throwaway
Prefect server, and prints:
- the time of each SQL statement (by its file in sql/), summed over the run, and how often it ran;
- the phases: selection, the batches (inside their transaction / as Prefect task runs), the rest;
so what the profile shows can be fixed (issue #7: profile before optimising).
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import os
import re
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from sqlalchemy import event  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from benchmarks.run import PrefectServer  # noqa: E402
from tasks.devtools import databases, scenario  # noqa: E402
from tasks.db.sql import SQL_DIR, load_sql  # noqa: E402

_lock = threading.Lock()
statement_time: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0])
phase_time: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0])


def _names() -> dict[int, str]:
    """Statement object -> its sql/ file: load_sql caches one clause per file and dialect, and the
    executed statement carries the clause it was compiled from."""
    names = {}
    for path in SQL_DIR.rglob("*.sql"):
        name = str(path.relative_to(SQL_DIR))[: -len(".sql")].split(".")[0]
        for dialect in ("postgresql", "sqlite"):
            names[id(load_sql(name, dialect))] = name
    return names


def _install_statement_timer() -> None:
    names = _names()

    @event.listens_for(Engine, "before_cursor_execute")
    def before(conn, cursor, statement, parameters, context, executemany):
        conn.info.setdefault("started", []).append(time.perf_counter())

    @event.listens_for(Engine, "after_cursor_execute")
    def after(conn, cursor, statement, parameters, context, executemany):
        elapsed = time.perf_counter() - conn.info["started"].pop()
        clause = getattr(getattr(context, "compiled", None), "statement", None)
        name = names.get(id(clause)) or re.sub(r"\s+", " ", statement).strip()[:60]
        with _lock:
            statement_time[name][0] += elapsed
            statement_time[name][1] += 1


@contextlib.contextmanager
def timed(phase: str):
    started = time.perf_counter()
    try:
        yield
    finally:
        with _lock:
            phase_time[phase][0] += time.perf_counter() - started
            phase_time[phase][1] += 1


def _wrap(module, name: str, phase: str) -> None:
    original = getattr(module, name, None)
    if original is None:
        return  # a step the engine no longer has under this name

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        with timed(phase):
            return original(*args, **kwargs)

    setattr(module, name, wrapper)


def _install_phase_timers() -> None:
    import tasks.engine.batches as batches
    import tasks.engine.selection as selection

    # Inside apply_batch's transaction: the lock, the re-check and the job's own statements.
    for job_module, apply_name in (("flows.purge_users", "PURGE"), ("flows.waive_fines", "WAIVE")):
        module = __import__(job_module, fromlist=[apply_name])
        job = getattr(module, apply_name)
        for attr in ("lock", "apply"):
            original = getattr(job, attr)

            def wrapper(*args, _original=original, _phase=f"batch: {attr}", **kwargs):
                with timed(_phase):
                    return _original(*args, **kwargs)

            object.__setattr__(job, attr, wrapper)
    _wrap(batches, "decide_all", "batch: re-select and re-decide")
    original_fn = batches.apply_batch.fn

    @functools.wraps(original_fn)  # Prefect binds the task's parameters by this signature
    def batch_body(*args, **kwargs):
        with timed("batch: whole transaction (inside the task run)"):
            return original_fn(*args, **kwargs)

    batches.apply_batch.fn = batch_body
    import tasks.engine.runner as run_job

    _wrap(run_job, "apply_in_batches", "apply_in_batches (all batches, wall)")
    for name in ("init_db", "start_job_run", "finish", "make_preview", "mark_interrupted_runs", "_run_job"):
        _wrap(run_job, name, f"run_job: {name}")
    _wrap(run_job, "publish_report", "run_job: publish_report")
    _wrap(run_job, "render_report", "run_job: render_report")
    _wrap(run_job, "finish_job_run", "run_job: finish_job_run")
    _wrap(batches, "recheck", "batch: compare with the selection")
    original_select = selection.select_and_decide.fn

    @functools.wraps(original_select)
    def select_body(*args, **kwargs):
        with timed("select_and_decide (whole library)"):
            return original_select(*args, **kwargs)

    selection.select_and_decide.fn = select_body
    # A real run that streams its selection (tasks/engine/runner.streams): the statement and its first
    # chunk, then reading and deciding the rest between the batches' submissions.
    _wrap(selection.StreamedSelection, "__init__", "streamed selection: statement + first chunk")
    original_batches = selection.StreamedSelection.batches

    def timed_batches(self, batch_size):
        stream = original_batches(self, batch_size)
        while True:
            with timed("streamed selection: reading and deciding, between batches"):
                batch = next(stream, None)
            if batch is None:
                return
            yield batch

    selection.StreamedSelection.batches = timed_batches


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("job", choices=["purge", "waive"])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--concurrency", type=int, help="batches at once (default: the flows' own)")
    args = parser.parse_args()
    if args.concurrency:
        import tasks.engine.batches as batches

        batches.batch_concurrency = lambda run: args.concurrency
    library = f"postgresql+psycopg2://postgres@127.0.0.1:5432/lumj_bench_{args.users}"
    clone = databases.clone_database(library, f"{args.job}_profile")
    server = PrefectServer()
    try:
        os.environ.update({**server.env, "DATABASE_URL": clone})
        _install_statement_timer()
        _install_phase_timers()
        from flows.__main__ import main as cli

        command = {"purge": scenario.PURGE_ARGS, "waive": scenario.WAIVE_ARGS}[args.job]
        if args.batch_size:
            command = [*command, "--batch-size", str(args.batch_size)]
        started = time.perf_counter()
        sys.argv = ["flows", *command]
        with contextlib.redirect_stdout(open(os.devnull, "w")):
            code = cli()
        total = time.perf_counter() - started
    finally:
        server.stop()
        databases.drop_database(clone)
    print(f"{args.job} at {args.users:,} users: exit {code}, {total:.1f} s in main() (after imports)")
    print("\nphases (seconds, times entered):")
    for phase, (seconds, count) in sorted(phase_time.items(), key=lambda kv: -kv[1][0]):
        print(f"  {seconds:8.2f}  {count:5d}  {phase}")
    print("\nstatements (seconds, executions):")
    for name, (seconds, count) in sorted(statement_time.items(), key=lambda kv: -kv[1][0])[:30]:
        print(f"  {seconds:8.2f}  {count:5d}  {name}")
    print(f"  {sum(s for s, _ in statement_time.values()):8.2f}         all statements")
    return 0


if __name__ == "__main__":
    sys.exit(main())
