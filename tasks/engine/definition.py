"""What a batch job is made of. Each job (purge, waive, merge, ...) supplies one `BatchJob`; the
shared machinery in tasks/selection.py, tasks/batches.py and tasks/job_runs.py does the rest.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import Connection

from tasks.reasons import CHANGED_SINCE_SELECTION, ELIGIBLE  # noqa: F401 - the engine's vocabulary

# (conn, parameters, run, keys or None for all) -> chunks of candidate rows
SelectFn = Callable[[Connection, Any, "JobRun", Sequence[Any] | None], Iterator[pd.DataFrame]]
# (candidates, parameters, run) -> the same rows with an `outcome` column: ELIGIBLE or a reason code
DecideFn = Callable[[pd.DataFrame, Any, "JobRun"], pd.DataFrame]
# (eligible rows) -> the job's counts, exactly what applying them would report
CountFn = Callable[[pd.DataFrame], dict[str, Any]]
# (conn inside the batch transaction, eligible rows re-checked, parameters, run) -> counts
ApplyFn = Callable[[Connection, pd.DataFrame, Any, "JobRun"], dict[str, Any]]
# (conn, batch rows) -> lock what the batch will change, before its guards are re-read
LockFn = Callable[[Connection, pd.DataFrame], None]
# (summary) -> the summary in the job's contract shape
ShapeFn = Callable[[dict[str, Any]], dict[str, Any]]
# (the units done, or a dry run's would-be done, with their decision rows) -> extra markdown report sections
SectionsFn = Callable[[pd.DataFrame], list[str]]


@dataclass(frozen=True)
class BatchJob:
    name: str                     # flow name, job_runs.job, artifact key prefix
    key: str                      # column naming one unit of work (a user, a pair)
    label: str                    # column shown for a unit in reports (primary id, "a -> b")
    select: SelectFn
    decide: DecideFn
    count: CountFn
    apply: ApplyFn
    lock: LockFn
    # Columns whose change between selection and apply means "leave it alone this time".
    fingerprint: Sequence[str] = ()
    # Counts that describe the selection (e.g. "eligible"): a real run reports them from the preview.
    selection_counts: Sequence[str] = ()
    shape_summary: ShapeFn | None = None
    # Job-specific report sections about the units done (e.g. merge's per-pair counts).
    report_sections: SectionsFn | None = None
    sample_columns: Sequence[str] = field(default_factory=tuple)


@dataclass
class JobRun:
    """One run of a job: what it was asked, and where it records what it does."""
    run_id: str
    job: str
    database_url: str
    dry_run: bool
    as_of: Any                    # datetime.date
    now: Any                      # datetime.datetime (naive UTC) the rules judge "now" by
    parameters: dict[str, Any]    # JSON-safe, as recorded in job_runs and the summary
    started: float                # time.monotonic() at start
    flow_run_id: str | None = None
