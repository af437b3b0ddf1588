"""What a job is: one `JobDefinition` per job holds everything the engine, the command line, the Prefect
form, the deployments and the report need. A job module declares it once; the jobs are listed in the
registry (flows/registry.py)."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pandas as pd
from sqlalchemy import Connection

from tasks.engine.parameters import JobParameters

P = TypeVar("P", bound=JobParameters)


@dataclass
class JobRun:
    """One run of a job: what it was asked, and where it records what it does."""
    run_id: str
    job: str
    database_url: str
    dry_run: bool
    as_of: dt.date
    now: dt.datetime              # naive UTC: the time the rules judge "now" by
    parameters: dict[str, Any]    # JSON-safe, as recorded in job_runs and the summary
    started: float                # time.monotonic() at start
    flow_run_id: str | None = None


@dataclass
class Preview:
    """What the selection decided: every unit with its outcome, and what applying the eligible ones does."""
    decisions: pd.DataFrame
    eligible_units: int
    counts: dict[str, Any]
    skipped: dict[str, int]
    affected: pd.DataFrame        # one row per eligible unit: label and sample columns
    left_out: pd.DataFrame        # one row per unit left out: label and reason


@dataclass(frozen=True)
class Unit:
    """What one unit of work is called: a user, a pair."""
    singular: str
    plural: str

    def count(self, n: int) -> str:
        return f"{n:,} {self.singular if n == 1 else self.plural}"


# (conn, parameters, run, keys or None for all) -> chunks of candidate rows
SelectFn = Callable[[Connection, P, JobRun, "Sequence[Any] | None"], Iterator[pd.DataFrame]]
# (candidates, parameters, run) -> the rows in scope with an `outcome` column: ELIGIBLE or a reason code
DecideFn = Callable[[pd.DataFrame, P, JobRun], pd.DataFrame]
# (eligible rows) -> the job's counts, exactly what applying them would report
CountFn = Callable[[pd.DataFrame], dict[str, Any]]
# (conn inside the batch transaction, eligible rows re-checked, parameters, run) -> counts
ApplyFn = Callable[[Connection, pd.DataFrame, P, JobRun], dict[str, Any]]
# (conn, batch rows) -> lock what the batch will change, before its guards are re-read
LockFn = Callable[[Connection, pd.DataFrame], None]
# (conn, parameters) -> raise InvalidInput naming a bad code and the valid ones
ValidateFn = Callable[[Connection, P], None]
# (run, preview, parameters) -> raise JobRefused to stop before anything changes
GuardFn = Callable[[JobRun, Preview, P], None]
# (parameters) -> parameters with what they point to read (a pairs file); raise InvalidInput
PrepareFn = Callable[[P], P]
# (parameters) -> whether the batches may start while the selection is still read: the selection comes
# ordered by the key, and no guard needs the whole preview with these parameters
StreamsFn = Callable[[P], bool]
# (summary) -> the summary in the job's contract shape
ShapeFn = Callable[[dict[str, Any]], dict[str, Any]]
# (summary) -> what the run does, in one sentence for people: "Waive 1,056 fines of 810 users, 5,076.16 EUR in total"
HeadlineFn = Callable[[dict[str, Any]], str]
# (the units done, or a dry run's would-be done, with their decision rows) -> extra markdown sections
SectionsFn = Callable[[pd.DataFrame], list[str]]


@dataclass(frozen=True)
class JobDefinition(Generic[P]):
    name: str                     # flow name, job_runs.job, artifact key prefix
    title: str                    # in the librarian's words: "Purge User Records"
    command: str                  # `python -m flows COMMAND`
    summary_line: str             # one line for --help, the flow and the deployment
    parameters: type[P]
    unit: Unit
    key: str                      # column naming one unit of work (a user id, a pair number)
    label: str                    # column shown for a unit in reports (primary id, "a -> b")
    select: SelectFn
    decide: DecideFn
    count: CountFn
    apply: ApplyFn
    lock: LockFn
    validate: ValidateFn | None = None
    guards: Sequence[GuardFn] = ()
    prepare: PrepareFn | None = None
    # Columns whose change between selection and apply means "leave it alone this time".
    fingerprint: Sequence[str] = ()
    # Counts that describe the selection (e.g. "eligible"): a real run reports them from the preview.
    selection_counts: Sequence[str] = ()
    shape_summary: ShapeFn | None = None
    report_sections: SectionsFn | None = None
    headline: HeadlineFn | None = None
    sample_columns: Sequence[str] = field(default_factory=tuple)
    # Merge: a pair left out is a pair that failed, so a run with any is "completed with failures";
    # for purge and waive a user left out is the rules at work, not a failure.
    left_out_is_failure: bool = False
    # Set (and true for the parameters): a real run without approval on PostgreSQL starts its first
    # batches while the selection is still read (tasks/engine/runner.py, selection.StreamedSelection).
    streams_selection: StreamsFn | None = None
