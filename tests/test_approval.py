"""Approval of a real run: it pauses after the preview, shows who would be affected, and changes
the database only when someone approves it; a rejection or a timeout ends it unchanged."""
import datetime as dt
import json
import threading
import time
from uuid import UUID

import pytest
from sqlalchemy import select

from flows.purge_users import purge_user_records
from tests.runs import run_flow
from tasks.db.schema import job_runs, users
from tests.builders import add_user

AS_OF = dt.date(2026, 12, 20)


def start_in_background(**overrides):
    """Start a real purge asking for approval; returns the thread and where its result lands."""
    outcome: dict = {}
    parameters = dict(as_of=AS_OF, max_share=1, dry_run=False, require_approval=True, **overrides)

    def run():
        try:
            outcome["state"], outcome["summary"] = run_flow(purge_user_records, **parameters)
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def wait_until_paused(engine, outcome, timeout=60):
    """The job run waiting for approval, its Paused flow run, and the text of the approval form."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
    from prefect.input.run_input import keyset_from_paused_state

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            assert "error" not in outcome, outcome["error"]
            with engine.connect() as conn:
                row = conn.execute(select(job_runs).where(job_runs.c.status == "AWAITING_APPROVAL")).mappings().first()
            if row is not None:
                flow_run = client.read_flow_run(UUID(row["flow_run_id"]))
                if flow_run.state and flow_run.state.is_paused():
                    # The run saves its form just after it pauses; the UI shows it once it is there.
                    keys = keyset_from_paused_state(flow_run.state)
                    try:
                        form = client.read_flow_run_input(flow_run.id, keys["description"])
                        client.read_flow_run_input(flow_run.id, keys["schema"])
                    except (ObjectNotFound, PrefectHTTPStatusError) as exc:
                        # Not saved yet: the client reports a missing input as a plain 404.
                        if isinstance(exc, PrefectHTTPStatusError) and exc.response.status_code != 404:
                            raise
                    else:
                        return row, flow_run, form
            time.sleep(0.3)
    pytest.fail("the run never paused for approval")


def job_run(engine, run_id):
    with engine.connect() as conn:
        return conn.execute(select(job_runs).where(job_runs.c.run_id == run_id)).mappings().one()


def purged(engine):
    with engine.connect() as conn:
        return conn.execute(select(users.c.id).where(users.c.purged_at.is_not(None))).scalars().all()


def library(engine):
    add_user(engine, "leaving", purge_date=dt.date(2026, 12, 1))
    add_user(engine, "borrowing", purge_date=dt.date(2026, 12, 1), active_loans=1)


def test_an_approved_run_shows_its_preview_then_applies_and_records_who_approved(engine, prefect_api):
    from prefect.flow_runs import resume_flow_run

    library(engine)
    thread, outcome = start_in_background()
    row, flow_run, form = wait_until_paused(engine, outcome)
    assert purged(engine) == []  # nothing changes while it waits
    assert "leaving" in row["report"] and "Users eligible | 1" in row["report"]
    assert flow_run.name == "purge-2026-12-20"
    assert {"purge-user-records", "real-run"} <= set(flow_run.tags)
    # What the approver sees first: one sentence saying what approving does; the detail is the preview.
    assert json.loads(form).startswith("**Purge 1 user; 1 user skipped (has active loans).**"), form
    assert "Sample of who is affected" in row["report"]

    resume_flow_run(flow_run.id, run_input={"decision": "Approve", "reviewer": "alice", "note": "term cleanup"})
    thread.join(60)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["summary"]["purged"] == 1 and outcome["summary"]["skipped"] == {"ACTIVE_LOANS": 1}
    assert outcome["state"].name == "Completed" and outcome["state"].is_completed()
    assert len(purged(engine)) == 1
    done = job_run(engine, row["run_id"])
    assert (done["status"], done["approved_by"], done["approval_note"]) == ("COMPLETED", "alice", "term cleanup")
    assert json.loads(done["summary"])["purged"] == 1
    assert "Run approved by alice on " in done["report"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_approval_by_someone_not_on_the_list_of_approvers_is_refused_in_words(engine, prefect_api, monkeypatch):
    from prefect import get_client
    from prefect.flow_runs import resume_flow_run
    from prefect.input.run_input import keyset_from_paused_state

    monkeypatch.setenv("LIBRARY_APPROVERS", "Alice, Ola Nordmann")
    library(engine)
    thread, outcome = start_in_background()
    row, flow_run, _ = wait_until_paused(engine, outcome)
    resume_flow_run(flow_run.id, run_input={"decision": "Approve", "reviewer": "mallory", "note": ""})

    def asked_again():
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(flow_run.id).state
            if not state.is_paused():
                return None
            try:
                return client.read_flow_run_input(flow_run.id, keyset_from_paused_state(state)["description"])
            except Exception:  # noqa: BLE001 - not saved yet
                return None

    deadline = time.monotonic() + 30
    while (form := asked_again()) is None or "mallory" not in form:
        assert time.monotonic() < deadline, "the run was not paused again"
        time.sleep(0.3)
    form = json.loads(form)
    assert "mallory is not on the library's list of approvers" in form and "Alice, Ola Nordmann" in form
    assert purged(engine) == []
    resume_flow_run(flow_run.id, run_input={"decision": "Approve", "reviewer": "ola nordmann", "note": ""})
    thread.join(60)
    assert outcome["state"].name == "Completed" and len(purged(engine)) == 1
    assert job_run(engine, row["run_id"])["approved_by"] == "ola nordmann"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_rejected_run_ends_without_changing_anything(engine, prefect_api):
    from prefect.flow_runs import resume_flow_run

    library(engine)
    thread, outcome = start_in_background()
    row, flow_run, _ = wait_until_paused(engine, outcome)
    resume_flow_run(flow_run.id, run_input={"decision": "Reject", "reviewer": "bob", "note": "wrong group"})
    thread.join(60)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["summary"]["purged"] == 0 and outcome["summary"]["dry_run"] is False
    # A rejection is a person's decision, not an error: a cancelled-type state named for what happened.
    assert (outcome["state"].name, outcome["state"].type.value) == ("Rejected", "CANCELLED")
    assert purged(engine) == []
    done = job_run(engine, row["run_id"])
    assert (done["status"], done["approved_by"], done["approval_note"]) == ("REJECTED", "bob", "wrong group")
    assert "rejected" in done["report"] and "nothing was changed" in done["report"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_unanswered_run_times_out_without_changing_anything(engine, prefect_api):
    library(engine)
    thread, outcome = start_in_background(approval_timeout_seconds=10)
    row, _, _ = wait_until_paused(engine, outcome)
    thread.join(60)
    assert not thread.is_alive()
    assert "error" not in outcome, outcome.get("error")
    assert outcome["summary"]["purged"] == 0
    assert (outcome["state"].name, outcome["state"].type.value) == ("Approval timed out", "CANCELLED")
    assert purged(engine) == []
    done = job_run(engine, row["run_id"])
    assert done["status"] == "APPROVAL_TIMED_OUT" and done["approved_by"] is None
    assert "within 10 s" in done["approval_note"] and "nothing was changed" in done["report"]
