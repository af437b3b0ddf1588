"""End to end, as an administrator runs the jobs: a real `prefect server start`, `prefect deploy --all`
from prefect.yaml, a process worker, deployment runs with parameters, the report read back through the
Prefect API, and an approval given through the API."""
from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from uuid import UUID

import pytest
from sqlalchemy import select

from tests.builders import add_user

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))
POOL = "library-jobs"  # the work pool prefect.yaml deploys to


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, timeout: float, what: str, processes=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process, log in processes:
            if process.poll() is not None:
                pytest.fail(f"{what}: a process exited early:\n{Path(log).read_text()[-3000:]}")
        value = check()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def start(args, env, log: Path) -> subprocess.Popen:
    # Its own session, so stopping it also stops what it started (uvicorn, flow-run subprocesses).
    return subprocess.Popen(args, env=env, cwd=PROJECT, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """A Prefect server with the deployments of prefect.yaml and a worker whose DATABASE_URL is a
    small library prepared here."""
    from tasks.db.engine import dispose_engines, get_engine
    from tasks.library.init_db import init_db

    home = tmp_path_factory.mktemp("prefect-e2e")
    db_url = f"sqlite:///{home}/library.db"
    engine = get_engine(db_url)
    init_db(engine)
    add_user(engine, "leaving", purge_date=dt.date(2026, 10, 1), fees_owed=["0.00"])
    add_user(engine, "recent", purge_date=dt.date(2026, 12, 10))
    add_user(engine, "dup", first_name="Ada", account_type="EXTERNAL")
    add_user(engine, "keep", first_name="Ada", account_type="EXTERNAL")

    api_url = f"http://127.0.0.1:{free_port()}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k != "DATABASE_URL"}
    env.update(PREFECT_HOME=str(home / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_API_URL=api_url, PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_WORKER_PREFETCH_SECONDS="1",
               PREFECT_LOGGING_LEVEL="INFO")
    processes: list[tuple[subprocess.Popen, Path]] = []
    try:
        log = home / "server.log"
        processes.append((start([PREFECT, "server", "start", "--host", "127.0.0.1", "--port",
                                 api_url.split(":")[-1].split("/")[0]], env, log), log))

        def healthy():
            try:
                with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for(healthy, 180, "the Prefect server", processes)
        for args in ([PREFECT, "work-pool", "create", POOL, "--type", "process"],
                     [PREFECT, "--no-prompt", "deploy", "--all"]):
            done = subprocess.run(args, env=env, cwd=PROJECT, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, f"{' '.join(args[1:])} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        log = home / "worker.log"
        processes.append((start([PREFECT, "worker", "start", "--pool", POOL],
                                {**env, "DATABASE_URL": db_url}, log), log))
        yield SimpleNamespace(api_url=api_url, engine=engine, processes=processes, home=home)
    finally:
        for process, _ in reversed(processes):
            stop(process)
        dispose_engines()


@pytest.fixture
def client(deployed):
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: deployed.api_url}):
        with get_client(sync_client=True) as client:
            yield client


def run_deployment(client, name: str, parameters: dict):
    deployment = client.read_deployment_by_name(name)
    return client.create_flow_run_from_deployment(deployment.id, parameters=parameters)


def wait_for_state(deployed, client, flow_run_id, done, what: str, timeout: float = 180):
    def reached():
        flow_run = client.read_flow_run(flow_run_id)
        return flow_run if flow_run.state and done(flow_run.state) else None

    return wait_for(reached, timeout, what, deployed.processes)


def job_run_of(engine, flow_run_id):
    from tasks.db.schema import job_runs

    with engine.connect() as conn:
        return conn.execute(select(job_runs).where(job_runs.c.flow_run_id == str(flow_run_id))).mappings().one()


def user_ids(engine, *primary_ids):
    from tasks.db.schema import users

    with engine.connect() as conn:
        return conn.execute(select(users.c.primary_id).where(users.c.primary_id.in_(primary_ids))
                            .where(users.c.purged_at.is_(None))).scalars().all()


def test_the_nightly_purge_deployment_runs_on_a_worker_and_reports_through_the_api(deployed, client):
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    nightly = client.read_deployment_by_name("purge-user-records/nightly")
    assert [(s.schedule.cron, s.schedule.timezone) for s in nightly.schedules] == [("30 2 * * *", "Europe/Oslo")]
    # A click on Quick run takes the deployment's parameters: a dry run. Only the schedule's runs are real.
    assert nightly.parameters["dry_run"] is True
    assert [s.parameters for s in nightly.schedules] == [{"dry_run": False}]
    assert nightly.global_concurrency_limit.limit == 1
    for name in ("bulk-fine-waiving/ad-hoc", "merge-users/ad-hoc"):
        ad_hoc = client.read_deployment_by_name(name)
        assert not ad_hoc.schedules and ad_hoc.global_concurrency_limit.limit == 1

    flow_run = run_deployment(client, "purge-user-records/nightly", {
        "dry_run": False, "as_of": "2026-12-20", "grace_period_days": 30, "max_share": 1})
    flow_run = wait_for_state(deployed, client, flow_run.id, lambda s: s.is_final(), "the purge run")
    assert (flow_run.state.type.value, flow_run.state.name) == ("COMPLETED", "Completed"), flow_run.state
    assert flow_run.name == "purge-2026-12-20"
    assert {"purge-user-records", "real-run", "nightly"} <= set(flow_run.tags)

    artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
        key=ArtifactFilterKey(any_=["purge-user-records-report", "purge-user-records-progress"]),
        flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run.id])))
    by_key = {a.key: a for a in artifacts}
    report = by_key["purge-user-records-report"].data
    assert "Purge User Records: real run" in report and "| Users purged | 1 |" in report
    assert float(by_key["purge-user-records-progress"].data) == 100.0

    assert user_ids(deployed.engine, "leaving", "recent") == ["recent"]
    recorded = job_run_of(deployed.engine, flow_run.id)
    assert recorded["status"] == "COMPLETED" and json.loads(recorded["summary"])["purged"] == 1
    assert recorded["report"] == report


def test_an_ad_hoc_merge_waits_for_approval_given_through_the_api_then_runs(deployed, client):
    from prefect.flow_runs import resume_flow_run
    from prefect.settings import PREFECT_API_URL, temporary_settings

    flow_run = run_deployment(client, "merge-users/ad-hoc", {
        "dry_run": False, "require_approval": True, "approval_timeout_seconds": 120,
        "pairs": "dup,keep"})  # the form's text area: one pair a line
    paused = wait_for_state(deployed, client, flow_run.id, lambda s: s.is_paused(), "the merge to pause")
    assert "merge-users" in paused.tags and user_ids(deployed.engine, "dup", "keep") == ["dup", "keep"]
    assert job_run_of(deployed.engine, flow_run.id)["status"] == "AWAITING_APPROVAL"

    def resumed():
        try:
            with temporary_settings({PREFECT_API_URL: deployed.api_url}):
                resume_flow_run(flow_run.id, run_input={"decision": "Approve", "reviewer": "alice", "note": "same person"})
            return True
        except Exception:  # noqa: BLE001 - the form is saved just after the pause; try again
            return False

    wait_for(resumed, 20, "the approval to be accepted", deployed.processes)
    done = wait_for_state(deployed, client, flow_run.id, lambda s: s.is_final(), "the merge run")
    assert done.state.is_completed(), done.state
    assert user_ids(deployed.engine, "dup", "keep") == ["keep"]
    recorded = job_run_of(deployed.engine, UUID(str(flow_run.id)))
    assert (recorded["status"], recorded["approved_by"], recorded["approval_note"]) == (
        "COMPLETED", "alice", "same person")
    assert json.loads(recorded["summary"])["merged"] == 1
