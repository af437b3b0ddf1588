"""Approval of an ad-hoc destructive run: pause after the preview and go on only when someone on the
library's list of approvers approves it in the Prefect UI (the Resume form: one sentence saying what
approving does, then Decision, Your name, Note; the preview report beside it); a rejection or a
timeout ends the run without changing anything."""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.input import RunInput, keyset_from_paused_state
from prefect.states import Paused
from prefect.utilities.engine import propose_state_sync
from typing import Literal

from pydantic import ConfigDict, Field

from tasks.engine.definition import JobDefinition, JobRun, Preview
from tasks.engine.outcome import summary_of
from tasks.engine.parameters import JobParameters
from tasks.engine.records import set_status
from tasks.engine.report import headline_of, publish_report, render, samples
from tasks.library.settings import library_approvers

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


def _every_field_required(schema: dict) -> None:
    # pydantic leaves a field with a default out of "required", and the form then labels it "(Optional)".
    schema["required"] = list(schema.get("properties", {}))
    schema.pop("description", None)  # the docstring is for programmers; the form's text is form_text()


class Approval(RunInput):
    """The approver's answer in the Resume form (its schema is plain pydantic, so titles work here).
    The decision starts on "Select": no default to submit by accident."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_every_field_required)

    decision: Literal["Approve", "Reject"] = Field(
        title="Decision", description="Approve: the job changes the library as described above. "
                                      "Reject: the run ends and changes nothing.")
    reviewer: str = Field(title="Your name", min_length=2, max_length=80,
                          description="Recorded with the job run, approved or rejected.")
    note: str = Field(default="", title="Note", max_length=500,
                      description="Why (recorded with the job run). May be left empty.")


def refusal(answer: Approval, approvers: list[str]) -> str | None:
    """Why an answer does not count, in words, or None. Only an approval needs a name on the library's
    list of approvers (LIBRARY_APPROVERS); a rejection changes nothing and counts from anyone."""
    name = answer.reviewer.strip()
    if len(name) < 2:
        return "Type your name in Your name."
    if answer.decision == "Approve" and approvers and name.casefold() not in {a.casefold() for a in approvers}:
        return (f"{name} is not on the library's list of approvers, so the run was not approved. "
                f"Ask one of them to answer: {', '.join(approvers)}.")
    return None


def form_text(headline: str, timeout: int, problem: str | None = None) -> str:
    """What the Resume dialog shows above the fields: the sentence saying what approving does first,
    short enough that the decision is visible without scrolling at 1280x800; the detail is the
    preview report (the run's Artifacts tab)."""
    lines = [f"**{headline}**", ""]
    if problem:
        lines += [f"**Not accepted:** {problem}", ""]
    minutes = f"{round(timeout / 60)} minutes" if timeout >= 120 else f"{timeout} s"
    lines += [f"Nothing has been changed yet. Choose Approve or Reject below, within {minutes}. "
              "The full preview (parameters, counts, who is affected) is on this run's Artifacts tab."]
    return "\n".join(lines)


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

    at: str | None = None          # when the answer came, "2026-12-20 14:03 UTC"

    def describe(self) -> str:
        if self.timed_out:
            return f"Nobody answered the approval form within {self.timed_out_after_s} s; nothing was changed."
        verdict = "approved" if self.approved else "rejected; nothing was changed"
        who = f" by {self.by}" if self.by else ""
        when = f" on {self.at}" if self.at else ""
        return f"Run {verdict}{who}{when}" + (f" ({self.note})" if self.note else "") + "."


def ask_for_approval(job: JobDefinition, run: JobRun, preview: Preview, parameters: JobParameters) -> ApprovalDecision:
    """Publish the preview, pause the flow run until someone answers the form (or the timeout), and
    record the answer in the job run. Nothing has been changed when this returns without approval."""
    logger = get_run_logger()
    timeout = int(parameters.approval_timeout_seconds)
    preview_summary = summary_of(job, run, preview.counts, preview.skipped)
    headline = headline_of(job, preview_summary)
    preview_report = render(
        job, run, status="AWAITING_APPROVAL", headline=headline,
        summary=preview_summary,
        work_s=time.monotonic() - run.started, units_done=preview.eligible_units,
        shown=samples(None, run, preview),
        notes=[f"Nothing has been changed yet. Answer the form (the run's menu, Resume) within {timeout} s: "
               "Approve applies these changes, Reject ends the run unchanged."],
    )
    publish_report(job.name, preview_report, f"{job.title}: preview awaiting approval")
    set_status(run, "AWAITING_APPROVAL", report=preview_report)
    logger.info("%s run %s awaits approval for %s s: %s", job.name, run.run_id, timeout, headline)
    approvers = library_approvers()
    deadline = time.monotonic() + timeout
    problem, attempt, answer = None, 0, None
    while (left := int(deadline - time.monotonic())) > 0:
        answer = wait_for_answer(Approval.with_initial_data(description=form_text(headline, left, problem)),
                                 timeout=left, key=f"approval-{run.run_id}" + (f"-{attempt}" if attempt else ""))
        if answer is None or (problem := refusal(answer, approvers)) is None:
            break
        logger.warning("%s run %s: answer not accepted: %s", job.name, run.run_id, problem)
        answer, attempt = None, attempt + 1
    if answer is None:
        decision = ApprovalDecision(False, "", "", timed_out_after_s=timeout)
    else:
        decision = ApprovalDecision(answer.decision == "Approve", answer.reviewer.strip(), answer.note.strip(),
                                    at=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    logger.info("%s run %s: %s", job.name, run.run_id, decision.describe())
    set_status(run, decision.status, approved_by=decision.by or None,
               approval_note=decision.describe() if decision.timed_out else (decision.note or None))
    return decision
