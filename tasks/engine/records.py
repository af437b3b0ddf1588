"""The audit trail: a job_runs row per run (parameters, status, summary, report) and job events
(what happened to whom), in the library database itself so they outlive any Prefect server."""
from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from decimal import Decimal
from typing import Any

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from pydantic import BaseModel
from sqlalchemy import Connection, Engine, insert, select, update

from tasks.db.engine import database_url, get_engine, mask_secrets, write_transaction
from tasks.engine.definition import JobRun
from tasks.library.money import CENT
from tasks.db.schema import job_events, job_runs
from tasks.db.sql import sql_for


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


def json_safe(value: Any) -> Any:
    """Parameters and summaries as the contract shows them: dates ISO, amounts decimal strings."""
    if isinstance(value, BaseModel):
        return json_safe(value.model_dump(mode="python"))
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [json_safe(v) for v in value]
    if isinstance(value, Decimal):
        return str(value.quantize(CENT)) if value == value.quantize(CENT) else str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars from pandas
        return value.item()
    return value


def _current_flow_run_id() -> str | None:
    context = FlowRunContext.get()
    return str(context.flow_run.id) if context and context.flow_run else None


def start_job_run(job: str, parameters: BaseModel, *, dry_run: bool, as_of: dt.date,
                  now: dt.datetime | None = None, url: str | None = None) -> JobRun:
    url = url or database_url()
    run = JobRun(
        run_id=str(uuid.uuid4()),
        job=job,
        database_url=url,
        dry_run=dry_run,
        as_of=as_of,
        now=now or utcnow(),
        parameters=json_safe(parameters),
        started=time.monotonic(),
        flow_run_id=_current_flow_run_id(),
    )
    with write_transaction(get_engine(url)) as conn:
        conn.execute(insert(job_runs).values(
            run_id=run.run_id, job=job, flow_run_id=run.flow_run_id, status="RUNNING", dry_run=dry_run,
            as_of=as_of, parameters=json.dumps(run.parameters, sort_keys=True),
            # Microseconds, so `history` orders runs started within the same second.
            started_at=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
        ))
    return run


def set_status(run: JobRun, status: str, **values: Any) -> None:
    with write_transaction(get_engine(run.database_url)) as conn:
        conn.execute(update(job_runs).where(job_runs.c.run_id == run.run_id).values(status=status, **values))


def finish_job_run(run: JobRun, status: str, summary: dict[str, Any], report: str,
                   error: str | None = None) -> None:
    set_status(run, status, summary=json.dumps(json_safe(summary), sort_keys=True), report=report,
               finished_at=utcnow(), error=mask_secrets(error, run.database_url) if error else None)


def record_events(conn: Connection, run: JobRun, event: str, rows: list[dict[str, Any]]) -> None:
    """Insert job events in one statement (rows: user_id, fee_id, amount_minor, details as dict)."""
    if not rows:
        return
    created = utcnow()
    conn.execute(insert(job_events), [
        {
            "run_id": run.run_id,
            "event": event,
            "user_id": r.get("user_id"),
            "fee_id": r.get("fee_id"),
            "amount_minor": r.get("amount_minor"),
            "details": json.dumps(json_safe(r["details"]), sort_keys=True) if r.get("details") else None,
            "created_at": created,
        }
        for r in rows
    ])


def stored_report(run_id: str, url: str | None = None) -> str | None:
    with get_engine(url).connect() as conn:
        return conn.execute(select(job_runs.c.report).where(job_runs.c.run_id == run_id)).scalar()


def mode_tag(dry_run: bool) -> str:
    return "dry-run" if dry_run else "real-run"


def tag_flow_run(job: str, dry_run: bool) -> None:
    """Tag the current flow run with its job and mode, so the UI's flow-run list filters by them."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return
    tags = sorted({*context.flow_run.tags, job, mode_tag(dry_run)})
    try:
        with get_client(sync_client=True) as client:
            client.update_flow_run(context.flow_run.id, tags=tags)
    except Exception as exc:  # noqa: BLE001 - tags help people find runs; they never stop a job
        get_run_logger().warning("could not tag the flow run: %s", type(exc).__name__)


def mark_interrupted_runs(engine: Engine, job: str) -> int:
    """Call while holding the job's lock: any real run of the job still RUNNING (or AWAITING_APPROVAL) died
    without finishing (a live one would hold the lock). History shows it as INTERRUPTED, not running for ever."""
    with write_transaction(engine) as conn:
        result = conn.execute(sql_for(conn, "common/mark_interrupted_runs"), {
            "job": job, "now": utcnow(),
            "error": "the run's process ended before it finished (found by the next real run); "
                     "its committed batches stand and the next run finished the rest",
        })
        return result.rowcount or 0
