"""Approval of an ad-hoc destructive run: pause after the preview and go on only when someone
approves it in the Prefect UI (a RunInput form showing the counts and a sample of who is affected);
a rejection or a timeout ends the run without changing anything."""
from __future__ import annotations

import time
from dataclasses import dataclass

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.input import RunInput, keyset_from_paused_state
from prefect.states import Paused
from prefect.utilities.engine import propose_state_sync
from pydantic import Field

from tasks.engine.definition import JobDefinition, JobRun, Preview
from tasks.engine.outcome import summary_of
from tasks.engine.parameters import JobParameters
from tasks.engine.records import set_status
from tasks.engine.report import publish_report, render, samples

# How often the paused run asks the API whether it was resumed: quick enough that an approval
# takes effect at once, and trivial load for an hour's wait.
POLL_SECONDS = 2
# The server lets a paused run end only before its pause expires (after that it forces it to Failed).
# The server's expiry is set this much after our own deadline, so an unanswered run can still end as
# the named *Approval timed out*, unchanged.
SERVER_GRACE_SECONDS = 600


def wait_for_answer(form, *, timeout: int, key: str):
    """Pause the flow run until someone answers `form` (returns the answer) or `timeout` seconds pass
    (returns None). Prefect's pause_flow_run, with the server's expiry moved past our deadline."""
    context = FlowRunContext.get()
    paused = Paused(timeout_seconds=timeout + SERVER_GRACE_SECONDS, reschedule=False, pause_key=key)
    keyset = keyset_from_paused_state(paused)
    paused.state_details.run_input_keyset = keyset
    with get_client(sync_client=True) as client:
        state = propose_state_sync(client=client, state=paused, flow_run_id=context.flow_run.id)
        if not state.is_paused():
            raise RuntimeError(f"the flow run could not be paused for approval: {state}")
        form.save(keyset)
        deadline = time.monotonic() + timeout
        while True:
            current = client.read_flow_run(context.flow_run.id).state
            if current is not None and current.is_running():
                return form.load(keyset)
            if time.monotonic() >= deadline:
                return None
            time.sleep(min(POLL_SECONDS, max(deadline - time.monotonic(), 0.1)))


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


def ask_for_approval(job: JobDefinition, run: JobRun, preview: Preview, parameters: JobParameters) -> ApprovalDecision:
    """Publish the preview, pause the flow run until someone answers the form (or the timeout), and
    record the answer in the job run. Nothing has been changed when this returns without approval."""
    logger = get_run_logger()
    timeout = int(parameters.approval_timeout_seconds)
    preview_report = render(
        job, run, status="AWAITING_APPROVAL", headline=None,
        summary=summary_of(job, run, preview.counts, preview.skipped),
        work_s=time.monotonic() - run.started, units_done=preview.eligible_units,
        shown=samples(None, run, preview),
        notes=[f"Nothing has been changed yet. Answer the form (Resume) within {timeout} s: "
               "tick 'approve' to apply these changes, leave it unticked to reject them."],
    )
    publish_report(job.name, preview_report, f"{job.title}: preview awaiting approval")
    set_status(run, "AWAITING_APPROVAL", report=preview_report)
    logger.info("%s run %s awaits approval for %s s", job.name, run.run_id, timeout)
    answer = wait_for_answer(Approval.with_initial_data(description=preview_report), timeout=timeout,
                             key=f"approval-{run.run_id}")
    if answer is None:
        decision = ApprovalDecision(False, "", "", timed_out_after_s=timeout)
    else:
        decision = ApprovalDecision(bool(answer.approve), answer.approved_by.strip(), answer.note.strip())
    logger.info("%s run %s: %s", job.name, run.run_id, decision.describe())
    set_status(run, decision.status, approved_by=decision.by or None,
               approval_note=decision.describe() if decision.timed_out else (decision.note or None))
    return decision
