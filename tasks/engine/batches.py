"""Apply: eligible units in batches, one database transaction per batch, one Prefect task run per
batch. Inside its transaction a batch locks its rows, re-reads and re-decides them, and applies only
those that are still eligible and unchanged; the rest are CHANGED_SINCE_SELECTION."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from pandas.api.types import is_numeric_dtype
from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.tasks import exponential_backoff
from sqlalchemy.exc import DBAPIError, OperationalError

from tasks.db.engine import get_engine, mask_secrets, plan_by_ids, write_transaction
from tasks.engine import progress
from tasks.engine.definition import JobDefinition, JobRun
from tasks.engine.parameters import JobParameters
from tasks.reasons import ELIGIBLE
from tasks.engine.selection import StreamedSelection, decide_all
from tasks.engine.tally import add_counts


@dataclass
class BatchResult:
    number: int
    keys: list[Any]
    counts: dict[str, Any]
    changed: dict[Any, Any]   # key -> label (as the report names the unit) of each unit changed since selection


@dataclass
class ApplyOutcome:
    counts: dict[str, Any] = field(default_factory=dict)
    changed: dict[Any, Any] = field(default_factory=dict)   # key -> label, as BatchResult.changed
    batches: int = 0
    committed_batches: int = 0
    failed_batches: list[int] = field(default_factory=list)
    error: str | None = None
    committed: list[int] = field(default_factory=list)   # batch numbers, in the order they committed

    selection_error: str | None = None   # a streamed selection that stopped: no batch after it started

    @property
    def complete(self) -> bool:
        return self.committed_batches == self.batches and self.selection_error is None

    @property
    def not_started(self) -> list[int]:
        return [n for n in range(1, self.batches + 1) if n not in self.committed and n not in self.failed_batches]

    def describe(self) -> str:
        """Which batches stand and which do not, for the report of a run that did not complete."""
        def numbers(ns: list[int]) -> str:
            return ", ".join(str(n) for n in sorted(ns)) or "none"

        stopped = f"; the selection stopped: {self.selection_error}" if self.selection_error else ""
        return (f"{self.committed_batches} of {self.batches} batches were committed (their changes stand): "
                f"{numbers(self.committed)}; failed and rolled back: {numbers(self.failed_batches)}; "
                f"not started: {numbers(self.not_started)}{stopped}")


def is_transient(exc: BaseException) -> bool:
    """Dropped connections, deadlocks, serialization failures and lock timeouts heal on a retry."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError)


def _retry_transient(task, task_run, state) -> bool:
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - we only classify it
        return is_transient(exc)
    return False


def fingerprints(frame: pd.DataFrame, key: str, columns: list[str]) -> pd.Series:
    """One hash per unit over the columns that must not change between selection and apply."""
    if frame.empty:
        return pd.Series(dtype="uint64")
    cols = [key, *columns]
    # Numbers as float64 (exact for ids, counts and cents), so a column read as int64 in one frame
    # and as float64 in another (a NULL elsewhere in its chunk) hashes the same; only text-like
    # columns go through str, which costs ten times more (profiled, BENCHMARKS.md).
    values = frame[cols].apply(lambda c: c.astype("float64") if is_numeric_dtype(c) else c.astype(str))
    hashed = pd.util.hash_pandas_object(values, index=False)
    return hashed.groupby(frame[key].to_numpy()).sum()


def recheck(job: JobDefinition, selected: pd.DataFrame, current: pd.DataFrame) -> tuple[pd.DataFrame, list[Any]]:
    """The rows of `current` that may still be applied, and the keys that changed since selection."""
    keys = pd.unique(selected[job.key])
    still = current[current["outcome"] == ELIGIBLE]
    ok = set(pd.unique(still[job.key]))
    if job.fingerprint:
        before = fingerprints(selected, job.key, list(job.fingerprint))
        after = fingerprints(still, job.key, list(job.fingerprint))
        both = before.index.intersection(after.index)
        same = before.loc[both].to_numpy() == after.loc[both].to_numpy()
        ok &= set(both[same])
    changed = [k for k in keys if k not in ok]
    return still[still[job.key].isin(ok)], changed


@task(name="apply-batch", task_run_name="{job.name}-batch-{number}", cache_policy=NO_CACHE,
      retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=1), retry_jitter_factor=0.5,
      retry_condition_fn=_retry_transient)
def apply_batch(job: JobDefinition, run: JobRun, parameters: JobParameters, number: int, selected: pd.DataFrame) -> BatchResult:
    keys = list(pd.unique(selected[job.key]))
    with write_transaction(get_engine(run.database_url)) as conn:
        plan_by_ids(conn)
        job.lock(conn, selected)
        current = decide_all(job, conn, parameters, run, keys)
        applicable, changed = recheck(job, selected, current)
        counts = job.apply(conn, applicable, parameters, run) if not applicable.empty else {}
    units = selected.drop_duplicates(job.key).set_index(job.key)[job.label]
    return BatchResult(number=number, keys=keys, counts=counts, changed={k: units[k] for k in changed})


def split_batches(eligible: pd.DataFrame, key: str, batch_size: int) -> list[pd.DataFrame]:
    keys = pd.unique(eligible[key])
    groups = [keys[i:i + batch_size] for i in range(0, len(keys), batch_size)]
    return [eligible[eligible[key].isin(g)] for g in groups]


def batch_concurrency(run: JobRun) -> int:
    """SQLite has one writer at a time; PostgreSQL takes two batches at once on two cores."""
    return 1 if run.database_url.startswith("sqlite") else 2


def apply_in_batches(job: JobDefinition, run: JobRun, decisions: pd.DataFrame | StreamedSelection,
                     parameters: JobParameters, batch_size: int) -> ApplyOutcome:
    """Run every batch; after a batch fails for good, start no new ones and say what was committed.
    Progress (tasks.engine.progress): units done of all eligible, after each committed batch.
    `decisions` is the whole decided selection, or a selection still being read (StreamedSelection):
    then each batch starts as soon as its units are read, and the number of batches is known at the end."""
    logger = get_run_logger()
    if isinstance(decisions, StreamedSelection):
        batches, total, outcome = decisions.batches(batch_size), None, ApplyOutcome(batches=0)
    else:
        eligible = decisions[decisions["outcome"] == ELIGIBLE]
        listed = split_batches(eligible, job.key, batch_size)
        batches, total, outcome = iter(listed), int(eligible[job.key].nunique()), ApplyOutcome(batches=len(listed))
        if not listed:
            return outcome
    progress_id = create_progress_artifact(progress=0.0, key=f"{job.name}-progress",
                                           description=f"{job.name} run {run.run_id}: batches committed")
    window = batch_concurrency(run)
    in_flight: dict[Any, int] = {}

    def collect(futures) -> None:
        for future in futures:
            number = in_flight.pop(future)
            try:
                result: BatchResult = future.result()
            except Exception as exc:  # noqa: BLE001 - recorded and reported below
                outcome.failed_batches.append(number)
                outcome.error = mask_secrets(f"batch {number}: {type(exc).__name__}: {exc}", run.database_url)
                logger.error("batch %s failed after retries: %s", number, outcome.error)
                continue
            outcome.committed_batches += 1
            outcome.committed.append(number)
            outcome.counts = add_counts(outcome.counts, result.counts)
            outcome.changed.update(result.changed)
            update_progress_artifact(progress_id, 100.0 * outcome.committed_batches / max(outcome.batches, 1))
            progress.advanced(len(result.keys))

    with progress.phase(progress.APPLYING, total=total, unit=job.unit.plural):
        number = 0
        while not outcome.failed_batches:
            try:
                batch = next(batches, None)
            except Exception as exc:  # noqa: BLE001 - a streamed selection that failed: no new batches
                outcome.selection_error = mask_secrets(f"{type(exc).__name__}: {exc}", run.database_url)
                outcome.error = outcome.error or f"selection: {outcome.selection_error}"
                logger.error("the selection failed while batches ran: %s", outcome.selection_error)
                break
            if batch is None:
                break
            number += 1
            if isinstance(decisions, StreamedSelection):
                outcome.batches = number
            future = apply_batch.submit(job, run, parameters, number, batch)
            in_flight[future] = number
            if len(in_flight) >= window:
                collect([next(as_completed(list(in_flight)))])
        collect(list(in_flight))
    return outcome
