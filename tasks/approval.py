"""Approval of an ad-hoc destructive run: pause after the preview and go on only when someone
approves it in the Prefect UI (a RunInput form); a rejection or a timeout ends it unchanged."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput

from tasks.job_definition import BatchJob, JobRun
from tasks.job_runs import set_status
from tasks.reports import publish_report


class Approval(RunInput):
    """Approve or reject this run. It changes the database only when approved."""
    approve: bool = False
    approved_by: str = ""
    note: str = ""


@dataclass
class ApprovalDecision:
    approved: bool
    by: str
    note: str

    def describe(self) -> str:
        verdict = "approved" if self.approved else "not approved"
        who = f" by {self.by}" if self.by else ""
        return f"Run {verdict}{who}" + (f": {self.note}" if self.note else "") + "."


def ask_for_approval(job: BatchJob, run: JobRun, preview: Any, parameters: Any, *, title: str) -> ApprovalDecision:
    from tasks.run_job import build_summary
    from tasks.reports import render_report
    import time

    summary = build_summary(job, run, preview.counts, preview.skipped)
    report = render_report(
        title=f"{title}: awaiting approval", summary=summary, status="AWAITING_APPROVAL",
        duration_s=time.monotonic() - run.started, units_done=preview.eligible_units, unit_name="units",
        database_url=run.database_url, samples=preview.samples,
        notes=["Resume this flow run in the Prefect UI and tick 'approve' to apply these changes."],
    )
    publish_report(job.name, report, f"{title}: preview awaiting approval")
    set_status(run, "AWAITING_APPROVAL", report=report)
    try:
        answer = pause_flow_run(wait_for_input=Approval, timeout=parameters.approval_timeout_seconds,
                                key=f"approval-{run.run_id}")
    except Exception as exc:  # noqa: BLE001 - prefect raises on timeout; nothing has changed
        decision = ApprovalDecision(False, "", f"no approval within {parameters.approval_timeout_seconds} s ({type(exc).__name__})")
    else:
        decision = ApprovalDecision(bool(answer.approve), answer.approved_by, answer.note)
    set_status(run, "APPROVED" if decision.approved else "REJECTED",
               approved_by=decision.by or None, approval_note=decision.note or None)
    return decision
