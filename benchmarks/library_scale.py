"""The pieces of the library-scale benchmark (benchmarks/run.py) and of its CI variant
(tests/test_scale.py): build a demo library, clone it so a flow and its baseline start from the same
state, run the hand-written set-based baselines, run a flow as its own process, and compare what two
databases hold after the same job.

"Same state" is checked on what a librarian or an auditor would look at: who is purged, what remains of
them, every fee's status and balance, every ledger transaction, the audit events, and how many rows each
segment table holds. Surrogate ids of new rows, run ids and times differ by nature and are left out.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import bindparam, create_engine, text
from sqlalchemy.engine import make_url

from tasks.db.engine import dispose_engines, get_engine, write_transaction
from tasks.devtools.demo_data import make_demo_library
from tasks.library.init_db import init_db

ROOT = Path(__file__).resolve().parent.parent
BASELINE_SQL = Path(__file__).resolve().parent / "sql"

# The benchmark's run date and job parameters: a nightly purge that also clears small debts, and an
# amnesty for users owing up to 25.00.
TODAY = dt.date(2026, 12, 20)
SEED = 42
PURGE_MAX_OWED = "50.00"
WAIVE_THRESHOLD = "25.00"
WAIVE_REASON = "AMNESTY"
WAIVE_COMMENT = "Winter amnesty"
PURGE_ARGS = ["purge", "--as-of", TODAY.isoformat(), "--max-owed", PURGE_MAX_OWED, "--confirm", "--json"]
WAIVE_ARGS = ["waive", "--as-of", TODAY.isoformat(), "--max-fine-threshold", WAIVE_THRESHOLD,
              "--reason", WAIVE_REASON, "--comment", WAIVE_COMMENT, "--confirm", "--json"]
# Anonymise loan history: what a library keeps linked for a year (loans, requests, fees alike).
ANONYMIZE_DAYS = 365
ANONYMIZE_ARGS = ["anonymize", "--as-of", TODAY.isoformat(), "--loan-days", str(ANONYMIZE_DAYS),
                  "--request-days", str(ANONYMIZE_DAYS), "--fee-days", str(ANONYMIZE_DAYS), "--confirm", "--json"]
MERGE_ARGS = ["merge", "--segments", "all", "--copy-as-internal", "--confirm", "--json"]
DEFAULT_POLICY = "keep-statistics-remove-id"


# ---------------------------------------------------------------- databases


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_path(url: str) -> str:
    return make_url(url).database


def pg_admin_url(url: str) -> str:
    return make_url(url).set(database="postgres").render_as_string(hide_password=False)


def build_library(url: str, users: int, seed: int = SEED) -> dict[str, int]:
    """A fresh demo library of `users` in the (empty, existing or creatable) database `url`."""
    engine = get_engine(url)
    init_db(engine)
    counts = make_demo_library(engine, users=users, seed=seed, today=TODAY)
    if not is_sqlite(url):
        # Fresh statistics, as a library database that has been running for a while has them.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    dispose_engines()
    return counts


def create_pg_database(admin_url: str, name: str, template: str | None = None) -> str:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if template:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        else:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    if is_sqlite(url):
        for suffix in ("", "-wal", "-shm"):
            Path(sqlite_path(url) + suffix).unlink(missing_ok=True)
        return
    admin = create_engine(pg_admin_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def clone_database(url: str, label: str) -> str:
    """An identical copy of the library at `url` (PostgreSQL: CREATE DATABASE ... TEMPLATE, which
    needs the source idle; SQLite: the online backup API)."""
    dispose_engines()
    if is_sqlite(url):
        source = sqlite_path(url)
        target = str(Path(source).with_name(f"{Path(source).stem}_{label}.db"))
        Path(target).unlink(missing_ok=True)
        with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
            src.backup(dst)
        return f"sqlite:///{target}"
    name = f"{make_url(url).database}_{label}"[:63]
    drop_database(make_url(url).set(database=name).render_as_string(hide_password=False))
    return create_pg_database(pg_admin_url(url), name, template=make_url(url).database)


# ---------------------------------------------------------------- baselines


def baseline_statements(name: str) -> list[str]:
    """benchmarks/sql/<name>.sql split into statements (a semicolon ends a line), comments removed."""
    source = (BASELINE_SQL / f"{name}.sql").read_text(encoding="utf-8")
    body = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*$", body, flags=re.MULTILINE) if s.strip()]


@dataclass
class Timed:
    seconds: float
    detail: dict[str, Any]


def run_baseline(url: str, name: str, params: dict[str, Any]) -> Timed:
    """Run a baseline in one transaction; the time includes the commit."""
    engine = get_engine(url)
    started = time.perf_counter()
    with write_transaction(engine) as conn:
        for statement in baseline_statements(name):
            used = {k: v for k, v in params.items() if f":{k}" in statement}
            conn.execute(text(statement), used)
    seconds = time.perf_counter() - started
    dispose_engines()
    return Timed(seconds, {})


def purge_baseline_params() -> dict[str, Any]:
    return {"cutoff": TODAY, "max_owed_minor": 5000, "now": dt.datetime.combine(TODAY, dt.time(12)),
            "run_id": str(uuid.uuid4()), "policy": DEFAULT_POLICY, "reason": "USER_PURGED",
            "comment": "waived by Purge User Records"}


def waive_baseline_params() -> dict[str, Any]:
    return {"threshold_minor": 2500, "now": dt.datetime.combine(TODAY, dt.time(12)), "run_id": str(uuid.uuid4()),
            "reason": WAIVE_REASON, "comment": WAIVE_COMMENT}


def anonymize_baseline_params() -> dict[str, Any]:
    cutoff = TODAY - dt.timedelta(days=ANONYMIZE_DAYS)
    return {"loan_cutoff": cutoff, "request_cutoff": cutoff, "fee_cutoff": cutoff, "keep_last": 0,
            "now": dt.datetime.combine(TODAY, dt.time(12)), "run_id": str(uuid.uuid4())}


def baseline_name(url: str, name: str) -> str:
    """benchmarks/sql/<name>.postgresql.sql on PostgreSQL where there is one, else <name>.sql."""
    if not is_sqlite(url) and (BASELINE_SQL / f"{name}.postgresql.sql").exists():
        return f"{name}.postgresql"
    return name


# ---------------------------------------------------------------- flows as their own process


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


def count_task_runs(api_url: str, flow_run_id: str) -> int:
    import httpx

    response = httpx.post(f"{api_url.rstrip('/')}/task_runs/count",
                          json={"flow_runs": {"id": {"any_": [flow_run_id]}}}, timeout=60)
    response.raise_for_status()
    return int(response.json())


# ---------------------------------------------------------------- merge pairs


def duplicate_pairs(url: str, limit: int) -> pd.DataFrame:
    """Up to `limit` pairs of demo duplicates that Merge Users accepts: the same names and birth date
    on exactly two live, unprotected users, the later one (the duplicate) holding only the Patron role."""
    with get_engine(url).connect() as conn:
        people = pd.read_sql(text(
            "SELECT id, primary_id, first_name, middle_name, last_name, birth_date, protected, "
            "(SELECT COUNT(*) FROM user_roles r WHERE r.user_id = u.id AND r.role_type <> '200') AS other_roles "
            "FROM users u WHERE purged_at IS NULL AND birth_date IS NOT NULL ORDER BY id"), conn)
    dispose_engines()
    keys = ["first_name", "middle_name", "last_name", "birth_date"]
    people[keys] = people[keys].astype(object).where(people[keys].notna(), "").astype(str)
    groups = people.groupby(keys, sort=False, dropna=False)["id"].transform("size")
    twins = people[groups == 2].sort_values("id")
    first = twins.drop_duplicates(keys, keep="first").set_index(keys)
    last = twins.drop_duplicates(keys, keep="last").set_index(keys)
    pairs = last.join(first, lsuffix="_from", rsuffix="_to").reset_index()
    ok = (~pairs["protected_from"].astype(bool) & ~pairs["protected_to"].astype(bool)
          & (pairs["other_roles_from"] == 0))
    pairs = pairs[ok].sort_values("id_from").head(limit)
    return pairs.rename(columns={"primary_id_from": "from_user", "primary_id_to": "to_user"})[
        ["from_user", "to_user", "id_from", "id_to"]].reset_index(drop=True)


def held_by(url: str, user_ids: list[int]) -> pd.DataFrame:
    """Loans, requests and fees per user: what a merge must carry over to the To user."""
    with get_engine(url).connect() as conn:
        frames = []
        for table in ("loans", "requests", "fees"):
            frames.append(pd.read_sql(text(f"SELECT user_id, COUNT(*) AS {table} FROM {table} GROUP BY user_id"),
                                      conn).set_index("user_id"))
    dispose_engines()
    held = pd.concat(frames, axis=1).fillna(0).astype("int64")
    return held.reindex(user_ids, fill_value=0)


# ---------------------------------------------------------------- comparing outcomes

_SNAPSHOT = {
    "users": "SELECT id, primary_id IS NULL AS no_primary_id, first_name IS NULL AS no_name, "
             "birth_date IS NULL AS no_birth_date, purged_at IS NOT NULL AS purged, purge_policy "
             "FROM users ORDER BY id",
    "fees": "SELECT id, user_id, status, balance_minor, comment IS NULL AS no_comment FROM fees ORDER BY id",
    "fee_transactions": "SELECT fee_id, type, amount_minor, reason, comment FROM fee_transactions "
                        "ORDER BY fee_id, type, amount_minor, reason, comment",
    "job_events": "SELECT event, user_id, fee_id, amount_minor, details FROM job_events "
                  "ORDER BY event, user_id, fee_id",
    "rows_per_table": " UNION ALL ".join(
        f"SELECT '{t}' AS table_name, COUNT(*) AS n FROM {t}"
        for t in ("users", "user_identifiers", "user_addresses", "user_emails", "user_phones", "user_notes",
                  "user_attachments", "user_roles", "user_blocks", "user_statistics", "user_proxies", "loans",
                  "requests", "fees", "fee_transactions", "job_events")) + " ORDER BY table_name",
}


# Anonymise loan history: every loan, request and fee (linked to whom, or the snapshot it keeps), the
# ledger, and the audit events' counts summed (the flow writes one event per batch, the baseline one).
_ANONYMIZED = ("user_id, anonymized_at IS NULL AS linked, anon_user_group, anon_record_type, anon_account_type, "
               "anon_statistics")
_ANONYMIZE_SNAPSHOT = {
    "loans": f"SELECT id, loan_status, {_ANONYMIZED} FROM loans ORDER BY id",
    "requests": f"SELECT id, request_status, {_ANONYMIZED} FROM requests ORDER BY id",
    "fees": f"SELECT id, status, balance_minor, comment IS NULL AS no_comment, {_ANONYMIZED} FROM fees ORDER BY id",
    "fee_transactions": _SNAPSHOT["fee_transactions"],
    "rows_per_table": _SNAPSHOT["rows_per_table"].replace(" UNION ALL SELECT 'job_events' AS table_name, COUNT(*) AS n "
                                                          "FROM job_events", ""),
    "job_events": "SELECT event, user_id, fee_id, amount_minor, details FROM job_events WHERE event <> 'HISTORY_ANONYMIZED' "
                  "ORDER BY event, user_id, fee_id",
    "anonymized_events": "SELECT details FROM job_events WHERE event = 'HISTORY_ANONYMIZED'",
}


def _summed_details(frame: pd.DataFrame) -> pd.DataFrame:
    totals: dict[str, int] = {}
    for details in frame["details"]:
        for key, value in json.loads(details).items():
            totals[key] = totals.get(key, 0) + int(value)
    return pd.DataFrame(sorted(totals.items()), columns=["what", "count"])


def snapshot(url: str, job: str | None = None) -> dict[str, pd.DataFrame]:
    statements = _ANONYMIZE_SNAPSHOT if job == "anonymize" else _SNAPSHOT
    with get_engine(url).connect() as conn:
        out = {name: pd.read_sql(text(sql), conn) for name, sql in statements.items()}
    dispose_engines()
    if "anonymized_events" in out:
        out["anonymized_events"] = _summed_details(out["anonymized_events"])
    for frame in out.values():
        for column in frame.columns:
            if frame[column].dtype == bool:
                frame[column] = frame[column].astype("int64")  # SQLite says 0/1, PostgreSQL True/False
    return out


def differences(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> list[str]:
    """What differs between two snapshots, one line per table (empty: the same)."""
    found = []
    for name in a:
        left, right = a[name].reset_index(drop=True), b[name].reset_index(drop=True)
        if left.shape != right.shape:
            found.append(f"{name}: {left.shape[0]} rows vs {right.shape[0]}")
            continue
        unequal = ~((left == right) | (left.isna() & right.isna())).all(axis=1)
        if unequal.any():
            i = int(unequal.to_numpy().nonzero()[0][0])
            found.append(f"{name}: {int(unequal.sum())} rows differ, first {left.iloc[i].to_dict()} "
                         f"vs {right.iloc[i].to_dict()}")
    return found


def merge_problems(url: str, pairs: pd.DataFrame, before: pd.DataFrame, summary: dict[str, Any]) -> list[str]:
    """What is wrong after merging `pairs` (empty: every pair merged as the contract says). `before`
    is held_by() for the pairs' From and To users before the merge."""
    user_ids = [int(i) for i in (*pairs["id_from"], *pairs["id_to"])]
    after = held_by(url, user_ids)
    problems = []
    if summary["merged"] != len(pairs):
        problems.append(f"merged {summary['merged']} of {len(pairs)} pairs: {summary['failed']}")
    expected = before.loc[pairs["id_from"]].to_numpy() + before.loc[pairs["id_to"]].to_numpy()
    if (after.loc[pairs["id_to"]].to_numpy() != expected).any():
        problems.append("a To user does not hold both users' loans, requests and fees")
    with get_engine(url).connect() as conn:
        rows = conn.execute(text("SELECT id FROM users WHERE id IN :ids").bindparams(bindparam("ids", expanding=True)),
                            {"ids": [int(i) for i in pairs["id_from"]]}).all()
    dispose_engines()
    if rows:
        problems.append(f"{len(rows)} From users still exist")
    return problems


def replicate_library(url: str, copies: int) -> None:
    """Grow the library at `url` to `copies` times its size (PostgreSQL): see
    benchmarks/sql/replicate_library.postgresql.sql."""
    from tasks.db.sql import sql_for

    engine = get_engine(url)
    with write_transaction(engine) as conn:
        for statement in baseline_statements("replicate_library.postgresql"):
            conn.execute(text(statement), {"copies": copies} if ":copies" in statement else {})
        conn.execute(sql_for(conn, "demo/reset_sequences"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    dispose_engines()
