"""The shape every job shares (DESIGN.md): validate -> select -> decide -> preview -> (dry run stops)
-> approval -> apply in batches -> record -> report. A job supplies a BatchJob; this is the story."""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from prefect import get_run_logger

from tasks.engine.approval import ask_for_approval
from tasks.engine.batches import ApplyOutcome, apply_in_batches
from tasks.db.engine import database_url, get_engine, mask_secrets, read_connection
from tasks.errors import JobRefused
from tasks.library.init_db import init_db
from tasks.engine.definition import CHANGED_SINCE_SELECTION, ELIGIBLE, BatchJob, JobRun
from tasks.db.job_lock import job_lock
from tasks.engine.parameters import JobParameters, run_date_and_time
from tasks.engine.records import finish_job_run, json_safe, mark_interrupted_runs, start_job_run, tag_flow_run
from tasks.library.money import format_amount
from tasks.engine.report import publish_report, render_report
from tasks.engine.selection import select_and_decide


class JobFailed(RuntimeError):
    """Part of a real run could not be committed; the message says what was and what was not."""


@dataclass
class Preview:
    decisions: pd.DataFrame
    eligible_units: int
    counts: dict[str, Any]
    skipped: dict[str, int]
    samples: dict[str, pd.DataFrame] = field(default_factory=dict)


Guard = Callable[[JobRun, Preview, Any], None]


def make_preview(job: BatchJob, decisions: pd.DataFrame) -> Preview:
    eligible = decisions[decisions["outcome"] == ELIGIBLE]
    units = decisions.drop_duplicates(job.key)
    left_out = units[units["outcome"] != ELIGIBLE]
    skipped = {str(k): int(v) for k, v in left_out["outcome"].value_counts().items()}
    shown = [job.label, *job.sample_columns]
    affected = eligible.drop_duplicates(job.key)[shown]
    return Preview(
        decisions=decisions,
        eligible_units=int(eligible[job.key].nunique()),
        counts=job.count(eligible),
        skipped=skipped,
        samples={
            "Sample of who is affected": affected,
            "Sample of who is skipped, and why": left_out[[job.label, "outcome"]].rename(columns={"outcome": "reason"}),
        },
    )


def amounts_as_decimals(counts: dict[str, Any]) -> dict[str, Any]:
    """Counts named `*_minor` hold cents; the summary shows them as decimal strings without the suffix."""
    out: dict[str, Any] = {}
    for key, value in counts.items():
        if key.endswith("_minor"):
            name = key[: -len("_minor")]
            out[name] = ({k: format_amount(v) for k, v in value.items()} if isinstance(value, dict)
                         else format_amount(value))
        elif isinstance(value, dict):
            out[key] = amounts_as_decimals(value)
        else:
            out[key] = json_safe(value)
    return out


def build_summary(job: BatchJob, run: JobRun, counts: dict[str, Any], skipped: dict[str, int]) -> dict[str, Any]:
    summary = {
        "job": job.name,
        "run_id": run.run_id,
        "dry_run": run.dry_run,
        "as_of": run.as_of.isoformat(),
        "parameters": run.parameters,
        "skipped": dict(sorted(skipped.items())),
        **amounts_as_decimals(counts),
    }
    return job.shape_summary(summary) if job.shape_summary else summary


def finish(job: BatchJob, run: JobRun, preview: Preview, *, title: str, unit_name: str, status: str,
           outcome: ApplyOutcome | None = None, notes: Sequence[str] = (), error: str | None = None) -> dict[str, Any]:
    zero = job.count(preview.decisions.iloc[0:0])
    skipped = dict(preview.skipped)
    if outcome is None:
        counts = preview.counts if status == "COMPLETED" else zero
        units_done = preview.eligible_units
    else:
        from_selection = {k: v for k, v in preview.counts.items() if k in job.selection_counts}
        counts = {**zero, **from_selection, **outcome.counts}
        units_done = preview.eligible_units - len(outcome.changed)
        if outcome.changed:
            skipped[CHANGED_SINCE_SELECTION] = skipped.get(CHANGED_SINCE_SELECTION, 0) + len(outcome.changed)
    summary = build_summary(job, run, counts, skipped)
    samples = dict(preview.samples)
    if not run.dry_run and status == "COMPLETED":
        # A real run's report is kept for years: it names nobody it changed.
        samples.pop("Sample of who is affected", None)
    if outcome is not None and outcome.changed:
        changed = preview.decisions[preview.decisions[job.key].isin(outcome.changed)].drop_duplicates(job.key)
        samples["Changed since selection (left alone)"] = changed[[job.label]]
    sections = [f"## Error\n{error}"] if error else []
    if job.report_sections and status == "COMPLETED":
        done = preview.decisions[preview.decisions["outcome"] == ELIGIBLE].drop_duplicates(job.key)
        if outcome is not None and outcome.changed:
            done = done[~done[job.key].isin(outcome.changed)]
        sections = job.report_sections(done) + sections
    report = render_report(
        title=title, summary=summary, status=status, duration_s=time.monotonic() - run.started,
        units_done=units_done, unit_name=unit_name, database_url=run.database_url, samples=samples,
        notes=list(notes), sections=sections or None,
    )
    finish_job_run(run, status, summary, report, error=error)
    publish_report(job.name, report, f"{title} ({'dry run' if run.dry_run else 'real run'}, {status.lower()})")
    return summary


def run_job(job: BatchJob, parameters: JobParameters, *, title: str, unit_name: str,
            validate: Callable[[Any, Any], None] | None = None, guards: Sequence[Guard] = ()) -> dict[str, Any]:
    engine = get_engine()
    init_db(engine)
    if validate:
        with read_connection(engine) as conn:
            validate(conn, parameters)  # InvalidInput before anything is recorded or changed
    with contextlib.ExitStack() as held:
        if not parameters.dry_run:
            # Two real runs of one job would select the same users; the second is refused here,
            # before it records or changes anything. Held until the run has finished.
            held.enter_context(job_lock(engine, database_url(), job.name))
            mark_interrupted_runs(engine, job.name)
        return _run_job(job, parameters, title=title, unit_name=unit_name, guards=guards)


def _run_job(job: BatchJob, parameters: JobParameters, *, title: str, unit_name: str,
             guards: Sequence[Guard]) -> dict[str, Any]:
    logger = get_run_logger()
    tag_flow_run(job.name, parameters.dry_run)
    as_of, now = run_date_and_time(parameters.as_of)
    run = start_job_run(job.name, parameters, dry_run=parameters.dry_run, as_of=as_of, now=now)
    logger.info("%s run %s (%s), as of %s", job.name, run.run_id, "dry run" if run.dry_run else "REAL", as_of)
    preview: Preview | None = None
    try:
        decisions = select_and_decide(job, run, parameters)
        preview = make_preview(job, decisions)
        logger.info("%s eligible, skipped %s", preview.eligible_units, preview.skipped)
        for guard in guards:
            guard(run, preview, parameters)
        if run.dry_run:
            return finish(job, run, preview, title=title, unit_name=unit_name, status="COMPLETED")
        if parameters.require_approval:
            approval = ask_for_approval(job, run, preview, parameters, title=title)
            if not approval.approved:
                return finish(job, run, preview, title=title, unit_name=unit_name, status=approval.status,
                              notes=[approval.describe()])
        outcome = apply_in_batches(job, run, decisions, parameters, parameters.batch_size)
    except JobRefused as exc:
        if preview is not None:
            finish(job, run, preview, title=title, unit_name=unit_name, status="REFUSED", notes=[str(exc)])
        raise
    except Exception as exc:
        message = mask_secrets(f"{type(exc).__name__}: {exc}", run.database_url)
        if preview is not None:
            finish(job, run, preview, title=title, unit_name=unit_name, status="FAILED",
                   error=f"{message}. Nothing was committed.")
        else:
            from tasks.engine.records import set_status

            set_status(run, "FAILED", error=message)
        raise
    if not outcome.complete:
        note = f"{outcome.describe()}. Rerunning the job finishes the work without doing anything twice."
        finish(job, run, preview, title=title, unit_name=unit_name, status="FAILED", outcome=outcome,
               notes=[note], error=outcome.error)
        raise JobFailed(f"{job.name}: {outcome.error}. {note}")
    return finish(job, run, preview, title=title, unit_name=unit_name, status="COMPLETED", outcome=outcome)
