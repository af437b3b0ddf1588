"""`python -m flows history`: what ran, when, with what, and what it did, read from the job_runs
table in the library database (which outlives any Prefect server)."""
from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table
from sqlalchemy import Boolean, Date, DateTime, Engine

from tasks.db.engine import read_connection
from tasks.db.sql import sql_for

# Summary keys that describe the run rather than count what it did.
_NOT_COUNTS = {"job", "run_id", "dry_run", "as_of", "parameters", "skipped"}


def job_runs_history(engine: Engine, *, job: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The latest `limit` job runs (newest first) as plain dicts with parameters and summary decoded."""
    with read_connection(engine) as conn:
        # SQLite hands text() results back as strings; the types make dates dates on every database.
        statement = sql_for(conn, "history/select_job_runs").columns(
            dry_run=Boolean, as_of=Date, started_at=DateTime, finished_at=DateTime)
        rows = conn.execute(statement, {"job": job, "limit": limit}).mappings().all()
    return [_decode(row) for row in rows]


def _decode(row) -> dict[str, Any]:
    def iso(value):
        return value.isoformat() if value is not None else None

    return {
        "run_id": row["run_id"],
        "job": row["job"],
        "flow_run_id": row["flow_run_id"],
        "status": row["status"],
        "dry_run": bool(row["dry_run"]),
        "as_of": iso(row["as_of"]),
        "started_at": iso(row["started_at"]),
        "finished_at": iso(row["finished_at"]),
        "parameters": json.loads(row["parameters"]) if row["parameters"] else {},
        "summary": json.loads(row["summary"]) if row["summary"] else None,
        "approved_by": row["approved_by"],
        "approval_note": row["approval_note"],
        "error": row["error"],
    }


def key_counts(summary: dict[str, Any] | None) -> str:
    """`purged=2 fines_waived=1 amount_waived=5.00; skipped ACTIVE_LOANS=1` — one line per run."""
    if not summary:
        return ""
    counts = []
    for key, value in summary.items():
        if key in _NOT_COUNTS:
            continue
        if isinstance(value, dict):
            value = ",".join(f"{k}:{v}" for k, v in sorted(value.items())) or "-"
        counts.append(f"{key}={value}")
    skipped = summary.get("skipped") or {}
    text = " ".join(counts)
    if skipped:
        text += "; skipped " + " ".join(f"{k}={v}" for k, v in sorted(skipped.items()))
    return text


def compact_parameters(parameters: dict[str, Any]) -> str:
    """The parameters that say something: empty lists and unset values are left out."""
    shown = {k: v for k, v in sorted(parameters.items()) if v not in (None, [], {}, "")}
    return " ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in shown.items())


def print_history(engine: Engine, *, job: str | None = None, limit: int = 20, as_json: bool = False,
                  out: TextIO | None = None) -> None:
    runs = job_runs_history(engine, job=job, limit=limit)
    out = out or sys.stdout
    if as_json:
        print(json.dumps(runs), file=out)
        return
    console = Console(file=out, width=200 if not out.isatty() else None)
    if not runs:
        console.print(f"No job runs yet{f' of {job}' if job else ''}.")
        return
    table = Table(title=f"Job runs{f' of {job}' if job else ''} (newest first)")
    for column in ("started (UTC)", "job", "mode", "status", "as of", "counts", "parameters", "run id"):
        table.add_column(column, overflow="fold")
    for run in runs:
        status = run["status"]
        if run["approved_by"]:
            status += f" (approval: {run['approved_by']})"
        table.add_row(
            (run["started_at"] or "")[:19].replace("T", " "), run["job"], "dry run" if run["dry_run"] else "REAL",
            status, run["as_of"] or "", key_counts(run["summary"]),
            compact_parameters(run["parameters"]), run["run_id"],
        )
    console.print(table)
