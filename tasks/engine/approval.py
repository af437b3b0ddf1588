"""Approval of an ad-hoc destructive run: pause after the preview and go on only when someone
approves it in the Prefect UI (a RunInput form showing the counts and a sample of who is affected);
a rejection or a timeout ends the run without changing anything."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from prefect import get_run_logger
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import Field

from tasks.engine.definition import BatchJob, JobRun
from tasks.engine.records import set_status
from tasks.engine.report import publish_report

# How often the paused run asks the API whether it was resumed: quick enough that an approval
# takes effect at once, and trivial load for an hour's wait.
POLL_SECONDS = 2


class Approval(RunInput):
    """Approve or reject this run. It changes the database only when `approve` is ticked."""

    approve: bool = Field(default=False, description="Tick to apply the changes shown above.")
    approved_by: str = Field(min_length=1, max_length=255,
                             description="Your name: recorded with the job run, approved or not.")
    note: str = Field(default="", max_length=2000, description="Why (recorded with the job run).")


@dataclass
class ApprovalDecision:
    approved: bool
    by: str
    note: str
    timed_out_after_s: int | None = None

    @property
    def timed_out(self) -> bool:
        return self.timed_out_after_s is not None

    @property
    def status(self) -> str:
        """The job run's status when the run ends here (it does not when approved)."""
        if self.approved:
            return "APPROVED"
        return "APPROVAL_TIMED_OUT" if self.timed_out else "REJECTED"

    def describe(self) -> str:
        if self.timed_out:
            return f"Nobody answered the approval form within {self.timed_out_after_s} s; nothing was changed."
        verdict = "approved" if self.approved else "rejected; nothing was changed"
        who = f" by {self.by}" if self.by else ""
        return f"Run {verdict}{who}" + (f" ({self.note})" if self.note else "") + "."


def ask_for_approval(job: BatchJob, run: JobRun, preview: Any, parameters: Any, *, title: str) -> ApprovalDecision:
    """Publish the preview, pause the flow run until someone answers the form (or the timeout), and
    record the answer in the job run. Nothing has been changed when this returns without approval."""
    from tasks.engine.report import render_report
    from tasks.engine.runner import build_summary

    logger = get_run_logger()
    summary = build_summary(job, run, preview.counts, preview.skipped)
    timeout = int(parameters.approval_timeout_seconds)
    preview_report = render_report(
        title=f"{title}: awaiting approval", summary=summary, status="AWAITING_APPROVAL",
        duration_s=time.monotonic() - run.started, units_done=preview.eligible_units, unit_name="units",
        database_url=run.database_url, samples=preview.samples,
        notes=[f"Nothing has been changed yet. Answer the form (Resume) within {timeout} s: "
               "tick 'approve' to apply these changes, leave it unticked to reject them."],
    )
    publish_report(job.name, preview_report, f"{title}: preview awaiting approval")
    set_status(run, "AWAITING_APPROVAL", report=preview_report)
    logger.info("%s run %s awaits approval for %s s", job.name, run.run_id, timeout)
    try:
        answer = pause_flow_run(wait_for_input=Approval.with_initial_data(description=preview_report),
                                timeout=timeout, poll_interval=POLL_SECONDS, key=f"approval-{run.run_id}")
    except FlowPauseTimeout:
        decision = ApprovalDecision(False, "", "", timed_out_after_s=timeout)
    else:
        decision = ApprovalDecision(bool(answer.approve), answer.approved_by.strip(), answer.note.strip())
    logger.info("%s run %s: %s", job.name, run.run_id, decision.describe())
    set_status(run, decision.status, approved_by=decision.by or None,
               approval_note=decision.describe() if decision.timed_out else (decision.note or None))
    return decision
