"""The story every job follows (DESIGN.md): check -> select -> decide -> preview -> guards -> (a dry run
stops) -> approval -> apply in batches -> record -> report. The job supplies a JobDefinition; the run
ends as a RunOutcome value from which everything that is recorded and shown is derived."""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

from prefect import get_run_logger

from tasks.db.engine import database_url, get_engine, mask_secrets, read_connection
from tasks.db.job_lock import job_lock
from tasks.engine import outcome as outcomes
from tasks.engine import progress
from tasks.engine.approval import ask_for_approval
from tasks.engine.batches import apply_in_batches
from tasks.engine.definition import JobDefinition, JobRun, P, Preview
from tasks.engine.outcome import Kind, RunOutcome
from tasks.engine.parameters import check_codes, run_date_and_time
from tasks.engine.records import finish_job_run, mark_interrupted_runs, start_job_run, tag_flow_run
from tasks.engine.report import outcome_report, publish_report
from tasks.engine.selection import StreamedSelection, select_and_decide, select_and_tally
from tasks.engine.tally import make_preview
from tasks.errors import JobRefused
from tasks.library.init_db import init_db


@dataclass
class JobResult:
    run: JobRun
    outcome: RunOutcome
    summary: dict[str, Any]


def check(job: JobDefinition[P], parameters: P) -> P:
    """Everything that makes a run invalid, before anything is recorded or changed (InvalidInput)."""
    if job.prepare:
        parameters = job.prepare(parameters)
    with read_connection(get_engine()) as conn:
        check_codes(conn, parameters)  # the codes the form offers as dropdowns (Form(codes=...))
        if job.validate:
            job.validate(conn, parameters)
    return parameters


def run_job(job: JobDefinition[P], parameters: P) -> JobResult:
    """Run the job once. Raises InvalidInput (bad parameters) or JobRefused (another real run holds the
    job) before anything is recorded; every other ending is a RunOutcome, recorded and reported."""
    init_db(get_engine())
    parameters = check(job, parameters)
    with contextlib.ExitStack() as held:
        if not parameters.dry_run:
            # Two real runs of one job would select the same units; the second is refused here,
            # before it records or changes anything. Held until the run has finished.
            held.enter_context(job_lock(get_engine(), database_url(), job.name))
            mark_interrupted_runs(get_engine(), job.name)
        return _run(job, parameters)


def _run(job: JobDefinition[P], parameters: P) -> JobResult:
    logger = get_run_logger()
    tag_flow_run(job.name, parameters.dry_run)
    as_of, now = run_date_and_time(parameters.as_of)
    run = start_job_run(job.name, parameters, dry_run=parameters.dry_run, as_of=as_of, now=now)
    logger.info("%s run %s (%s), as of %s", job.name, run.run_id, "dry run" if run.dry_run else "REAL", as_of)
    preview: Preview | None = None
    try:
        if streams(job, run, parameters):
            preview, outcome = _select_while_applying(job, run, parameters)
        else:
            with progress.phase(progress.SELECTING, total=None, unit=job.unit.plural):
                if run.dry_run and job.streams_selection is not None:
                    # Its selection comes ordered by the key: previewed chunk by chunk, never held whole.
                    preview = select_and_tally(job, run, parameters)
                else:
                    preview = make_preview(job, select_and_decide(job, run, parameters))
            logger.info("%s eligible, skipped %s", job.unit.count(preview.eligible_units), preview.skipped)
            outcome = _decide_and_apply(job, run, parameters, preview)
    except JobRefused as exc:
        outcome = outcomes.stopped(Kind.REFUSED, job, preview, str(exc))
    except Exception as exc:  # noqa: BLE001 - recorded as the run's outcome, never lost
        message = mask_secrets(f"{type(exc).__name__}: {exc}", run.database_url)
        logger.error("%s run %s failed: %s", job.name, run.run_id, message)
        outcome = outcomes.stopped(Kind.FAILED, job, preview, "nothing was committed.", error=message)
    summary = outcomes.summary(job, run, outcome)
    report = outcome_report(job, run, outcome, preview, time.monotonic() - run.started)
    finish_job_run(run, outcome.status, summary, report, error=outcome.error)
    publish_report(job.name, report, f"{job.title}: {outcome.kind.state_name}"
                                     + ("" if run.dry_run or outcome.kind is Kind.DRY_RUN else " (real run)"))
    return JobResult(run, outcome, summary)


def streams(job: JobDefinition[P], run: JobRun, parameters: P) -> bool:
    """Batches may start before the whole library is read when nothing has to see the whole selection
    first: a real run, no approval, no guard that would judge it (the job says), and PostgreSQL (SQLite
    would make the batches' writes wait for the open selection)."""
    return (not run.dry_run and not parameters.require_approval and job.streams_selection is not None
            and job.streams_selection(parameters) and not run.database_url.startswith("sqlite"))


def _select_while_applying(job: JobDefinition[P], run: JobRun, parameters: P) -> tuple[Preview, RunOutcome]:
    """The selection and the batches at once (BENCHMARKS.md: the whole-library selection was a fifth
    of a run before any batch started). The preview, the report and the counts are the same as when
    the selection is read first: tallied unit by unit as the rows are read (tasks/engine/tally.py)."""
    with progress.phase(progress.SELECTING, total=None, unit=job.unit.plural):
        selection = StreamedSelection(job, run, parameters)   # the statement has run: its snapshot is taken
    try:
        applied = apply_in_batches(job, run, selection, parameters, parameters.batch_size)
    finally:
        selection.close()
    preview = selection.preview()
    get_run_logger().info("%s eligible, skipped %s", job.unit.count(preview.eligible_units), preview.skipped)
    return preview, outcomes.from_batches(job, preview, applied)


def _decide_and_apply(job: JobDefinition[P], run: JobRun, parameters: P, preview: Preview) -> RunOutcome:
    for guard in job.guards:
        guard(run, preview, parameters)
    if run.dry_run:
        return outcomes.from_preview(job, run, preview)
    decision, waited = None, 0.0
    if parameters.require_approval:
        asked = time.monotonic()
        decision = ask_for_approval(job, run, preview, parameters)
        waited = time.monotonic() - asked
        if not decision.approved:
            kind = Kind.APPROVAL_TIMED_OUT if decision.timed_out else Kind.REJECTED
            return outcomes.stopped(kind, job, preview, decision.describe(), approval=decision, waited_s=waited)
    applied = apply_in_batches(job, run, preview.decisions, parameters, parameters.batch_size)
    return outcomes.from_batches(job, preview, applied, approval=decision, waited_s=waited)
