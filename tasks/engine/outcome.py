"""The outcome of a run, as a value. The summary, the report, the job_runs row, the Prefect state and
the command line's exit code are all derived from it, so each outcome can be tested without Prefect."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tasks.engine.definition import JobDefinition, JobRun, Preview
from tasks.engine.records import json_safe
from tasks.library.money import format_amount
from tasks.reasons import CHANGED_SINCE_SELECTION

if TYPE_CHECKING:
    from tasks.engine.approval import ApprovalDecision
    from tasks.engine.batches import ApplyOutcome


class Kind(enum.Enum):
    """What happened. `value` is the job_runs status; `state` the Prefect state's name and type."""

    COMPLETED = ("COMPLETED", "Completed", "COMPLETED")
    COMPLETED_WITH_FAILURES = ("COMPLETED_WITH_FAILURES", "Completed with failures", "COMPLETED")
    DRY_RUN = ("COMPLETED", "Dry run", "COMPLETED")
    # Not errors: a person decided, or did not answer; nothing changed.
    REJECTED = ("REJECTED", "Rejected", "CANCELLED")
    APPROVAL_TIMED_OUT = ("APPROVAL_TIMED_OUT", "Approval timed out", "CANCELLED")
    # Errors someone must look at (a refused nightly purge should notify): red in the runs list.
    REFUSED = ("REFUSED", "Refused", "FAILED")
    INVALID = ("INVALID", "Invalid parameters", "FAILED")
    FAILED = ("FAILED", "Failed", "FAILED")

    def __init__(self, status: str, state_name: str, state_type: str):
        self.status = status
        self.state_name = state_name
        self.state_type = state_type

    @property
    def exit_code(self) -> int:
        """The command line's exit code (contract: 0 the job ran, 2 bad input, 1 anything else)."""
        if self is Kind.INVALID:
            return 2
        return 1 if self in (Kind.REFUSED, Kind.FAILED) else 0


@dataclass
class RunOutcome:
    kind: Kind
    counts: dict[str, Any]            # the job's counts (amounts as *_minor cents)
    skipped: dict[str, int]           # reason -> units left out
    units_done: int                   # units changed (or, for a dry run, that would be)
    reason: str | None = None         # why a run stopped: refusal, rejection, timeout, failure
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    approval: ApprovalDecision | None = None
    applied: ApplyOutcome | None = None
    waited_s: float = 0.0             # time spent waiting for an approver, not working

    @property
    def status(self) -> str:
        return self.kind.status


def zero_counts(job: JobDefinition, preview: Preview | None) -> dict[str, Any]:
    if preview is None:
        return {}
    return job.count(preview.decisions.iloc[0:0])


def from_preview(job: JobDefinition, run: JobRun, preview: Preview) -> RunOutcome:
    """A dry run: the counts say exactly what a real run would do."""
    return RunOutcome(Kind.DRY_RUN, dict(preview.counts), dict(preview.skipped), preview.eligible_units)


def stopped(kind: Kind, job: JobDefinition, preview: Preview | None, reason: str, *,
            approval: ApprovalDecision | None = None, waited_s: float = 0.0, error: str | None = None) -> RunOutcome:
    """Refused by a guard, rejected, timed out, or failed before any batch: nothing was changed."""
    skipped = dict(preview.skipped) if preview is not None else {}
    return RunOutcome(kind, zero_counts(job, preview), skipped, 0, reason=reason, approval=approval,
                      waited_s=waited_s, error=error)


def from_batches(job: JobDefinition, preview: Preview, applied: ApplyOutcome, *,
                 approval: ApprovalDecision | None = None, waited_s: float = 0.0) -> RunOutcome:
    """A real run: what the committed batches did. Units changed since selection are counted as skipped."""
    from_selection = {k: v for k, v in preview.counts.items() if k in job.selection_counts}
    counts = {**zero_counts(job, preview), **from_selection, **applied.counts}
    skipped = dict(preview.skipped)
    if applied.changed:
        skipped[CHANGED_SINCE_SELECTION] = skipped.get(CHANGED_SINCE_SELECTION, 0) + len(applied.changed)
    done = preview.eligible_units - len(applied.changed)
    if not applied.complete:
        note = f"{applied.describe()}. Rerunning the job finishes the work without doing anything twice."
        return RunOutcome(Kind.FAILED, counts, skipped, done, reason=note, error=applied.error,
                          approval=approval, applied=applied, waited_s=waited_s)
    failures = sum(v for k, v in preview.skipped.items()) if job.left_out_is_failure else 0
    kind = Kind.COMPLETED_WITH_FAILURES if failures else Kind.COMPLETED
    return RunOutcome(kind, counts, skipped, done, approval=approval, applied=applied, waited_s=waited_s)


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


def summary_of(job: JobDefinition, run: JobRun, counts: dict[str, Any], skipped: dict[str, int]) -> dict[str, Any]:
    """The run summary in the contract's shape (`--json`, job_runs.summary, the flow's result)."""
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


def summary(job: JobDefinition, run: JobRun, outcome: RunOutcome) -> dict[str, Any]:
    return summary_of(job, run, outcome.counts, outcome.skipped)
