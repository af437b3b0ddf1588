"""The outcome of a run as a value: what the summary, the report, the job_runs status, the Prefect state
and the exit code say for each way a run can end, without Prefect or a database."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from flows.merge_users import MERGE
from flows.purge_users import PURGE
from tasks.engine import outcome as outcomes
from tasks.engine.approval import ApprovalDecision
from tasks.engine.batches import ApplyOutcome
from tasks.engine.definition import JobRun
from tasks.engine.outcome import Kind
from tasks.engine.report import AFFECTED, LEFT_OUT, outcome_report
from tasks.engine.tally import make_preview
from tasks.reasons import CHANGED_SINCE_SELECTION, ELIGIBLE
from tasks.segments import KINDS


def purge_run(dry_run: bool) -> JobRun:
    return JobRun(run_id="r-1", job=PURGE.name, database_url="postgresql://lib:secret@db/lib", dry_run=dry_run,
                  as_of=dt.date(2026, 12, 20), now=dt.datetime(2026, 12, 20, 12), parameters={"max_owed": "0.00"},
                  started=0.0)


def purge_preview():
    decisions = pd.DataFrame({
        "user_id": [1, 2, 3, 4], "primary_id": ["ada", "bob", "cy", "dee"],
        "user_group": ["GRAD"] * 4, "record_type": ["PUBLIC"] * 4, "purge_date": ["2026-01-01"] * 4,
        "owed_minor": [250, 0, 0, 900], "active_fees": [1, 0, 0, 2],
        "outcome": [ELIGIBLE, ELIGIBLE, "ACTIVE_LOANS", "OWES_ABOVE_THRESHOLD"],
    })
    return make_preview(PURGE, decisions)


def test_a_dry_run_promises_what_the_real_run_would_do_and_names_who():
    run, preview = purge_run(True), purge_preview()
    result = outcomes.from_preview(PURGE, run, preview)
    summary = outcomes.summary(PURGE, run, result)
    assert (result.kind, result.status, result.kind.state_name, result.kind.state_type) == (
        Kind.DRY_RUN, "COMPLETED", "Dry run", "COMPLETED")
    assert summary["purged"] == 2 and summary["amount_waived"] == "2.50" and summary["fines_waived"] == 1
    assert summary["skipped"] == {"ACTIVE_LOANS": 1, "OWES_ABOVE_THRESHOLD": 1}
    report = outcome_report(PURGE, run, result, preview, elapsed_s=2.0)
    assert AFFECTED in report and "| ada |" in report and LEFT_OUT in report and "| cy | ACTIVE_LOANS |" in report
    assert "secret" not in report and "lib:***@db" in report
    assert result.kind.exit_code == 0


def test_a_refused_run_says_why_first_and_names_nobody_as_affected():
    run, preview = purge_run(False), purge_preview()
    result = outcomes.stopped(Kind.REFUSED, PURGE, preview, "this run would purge 2 users, more than Most users per run (1) allows")
    summary = outcomes.summary(PURGE, run, result)
    assert summary["purged"] == 0 and summary["amount_waived"] == "0.00"
    assert (result.status, result.kind.state_name, result.kind.state_type, result.kind.exit_code) == (
        "REFUSED", "Refused", "FAILED", 1)
    report = outcome_report(PURGE, run, result, preview, elapsed_s=1.0)
    first_lines = report.splitlines()[:3]
    assert any("Refused: this run would purge 2 users" in line for line in first_lines)
    assert AFFECTED not in report and "| ada |" not in report


@pytest.mark.parametrize("decision, kind, status", [
    (ApprovalDecision(False, "bob", "wrong group"), Kind.REJECTED, "REJECTED"),
    (ApprovalDecision(False, "", "", timed_out_after_s=60), Kind.APPROVAL_TIMED_OUT, "APPROVAL_TIMED_OUT"),
])
def test_an_unapproved_run_is_not_an_error_and_its_wait_is_not_work(decision, kind, status):
    run, preview = purge_run(False), purge_preview()
    result = outcomes.stopped(kind, PURGE, preview, decision.describe(), approval=decision, waited_s=50.0)
    assert (result.status, result.kind.state_type, result.kind.exit_code) == (status, "CANCELLED", 0)
    report = outcome_report(PURGE, run, result, preview, elapsed_s=51.0)
    assert "nothing was changed" in report.splitlines()[2]
    assert "**Duration of the work:** 1.00 s" in report


def test_a_real_run_counts_what_its_batches_did_and_names_nobody_it_changed():
    run, preview = purge_run(False), purge_preview()
    applied = ApplyOutcome(counts={"purged": 1, "fines_waived": 1, "amount_waived_minor": 250}, changed={2: "bob"},
                           batches=1, committed_batches=1, committed=[1])
    result = outcomes.from_batches(PURGE, preview, applied)
    summary = outcomes.summary(PURGE, run, result)
    assert result.kind is Kind.COMPLETED and result.units_done == 1
    assert (summary["eligible"], summary["purged"]) == (2, 1)  # eligible is the selection's
    assert summary["skipped"][CHANGED_SINCE_SELECTION] == 1
    report = outcome_report(PURGE, run, result, preview, elapsed_s=1.0)
    assert AFFECTED not in report and "| ada |" not in report
    assert "Changed since selection" in report and "| bob |" in report


def test_a_run_whose_batch_failed_says_what_was_committed():
    run, preview = purge_run(False), purge_preview()
    applied = ApplyOutcome(counts={"purged": 1, "fines_waived": 0, "amount_waived_minor": 0}, batches=2,
                           committed_batches=1, committed=[1], failed_batches=[2], error="batch 2: OperationalError")
    result = outcomes.from_batches(PURGE, preview, applied)
    assert (result.kind, result.status, result.kind.exit_code) == (Kind.FAILED, "FAILED", 1)
    assert "1 of 2 batches were committed" in result.reason and "Rerunning the job finishes" in result.reason
    assert "batch 2: OperationalError" in outcome_report(PURGE, run, result, preview, elapsed_s=1.0)


def test_a_merge_with_failed_pairs_is_completed_with_failures():
    decisions = pd.DataFrame({"pair_no": [1, 2], "pair": ["a -> b", "c -> d"],
                              "outcome": [ELIGIBLE, "USER_NOT_FOUND"], **{f"moved_{k}": [0, 0] for k in KINDS}})
    preview = make_preview(MERGE, decisions)
    applied = ApplyOutcome(counts={"merged": 1, "moved": {}}, batches=1, committed_batches=1, committed=[1])
    result = outcomes.from_batches(MERGE, preview, applied)
    assert (result.kind.state_name, result.kind.state_type, result.status) == (
        "Completed with failures", "COMPLETED", "COMPLETED_WITH_FAILURES")
    assert outcomes.summary(MERGE, purge_run(False), result)["failed"] == {"USER_NOT_FOUND": 1}


def test_every_outcome_has_a_distinct_state_name():
    names = [k.state_name for k in Kind]
    assert len(names) == len(set(names))
    assert {k.state_type for k in Kind} == {"COMPLETED", "CANCELLED", "FAILED"}


def test_the_headline_says_each_reason_in_agreement_with_its_count():
    decisions = pd.DataFrame({
        "user_id": range(1, 135), "primary_id": [f"u{n}" for n in range(1, 135)],
        "user_group": ["GRAD"] * 134, "record_type": ["PUBLIC"] * 134, "purge_date": ["2026-01-01"] * 134,
        "owed_minor": [0] * 134, "active_fees": [0] * 134,
        "outcome": [ELIGIBLE] + ["ACTIVE_LOANS"] * 129 + ["ACTIVE_REQUESTS", "OWES_ABOVE_THRESHOLD"] * 2})
    run, preview = purge_run(True), make_preview(PURGE, decisions)
    report = outcome_report(PURGE, run, outcomes.from_preview(PURGE, run, preview), preview, elapsed_s=1.0)
    assert ("; 133 users skipped (129 have active loans, 2 have active requests, 2 owe more than the limit).**"
            in report), report
    only_loans = make_preview(PURGE, decisions[decisions["outcome"].isin([ELIGIBLE, "ACTIVE_LOANS"])])
    report = outcome_report(PURGE, run, outcomes.from_preview(PURGE, run, only_loans), only_loans, elapsed_s=1.0)
    assert "; 129 users skipped (have active loans).**" in report, report


def test_a_report_speaks_in_words_with_the_currency_and_says_who_approved_and_when(monkeypatch):
    monkeypatch.setenv("LIBRARY_CURRENCY", "NOK")
    run, preview = purge_run(True), purge_preview()
    run.parameters = {"grace_period_days": 10, "max_owed": "0.00", "user_groups": [], "dry_run": True,
                      "max_users": None}
    report = outcome_report(PURGE, run, outcomes.from_preview(PURGE, run, preview), preview, elapsed_s=1.0)
    assert ("**Dry run: a real run would purge 2 users, waiving 1 fine (2.50 NOK); 2 users skipped "
            "(1 has active loans, 1 owes more than the limit).**") in report
    for row in ("| Grace period (days) | 10 |", "| User groups | all |", "| Most owed | 0.00 NOK |",
                "| Dry run | yes |", "| Most users per run | no limit |", "| Users purged | 2 |",
                "| Amount waived | 2.50 NOK |", "| has active loans | ACTIVE_LOANS | 1 |"):
        assert row in report, row
    assert "True" not in report and "None" not in report and "[]" not in report

    approved = ApprovalDecision(True, "alice", "term cleanup", at="2026-12-20 14:03 UTC")
    real = purge_run(False)
    done = outcomes.from_batches(PURGE, preview, ApplyOutcome(counts={"purged": 2}, batches=1,
                                                              committed_batches=1), approval=approved, waited_s=30.0)
    report = outcome_report(PURGE, real, done, preview, elapsed_s=31.0)
    assert "- **Approval:** Run approved by alice on 2026-12-20 14:03 UTC (term cleanup)." in report
