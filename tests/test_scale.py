"""Correctness at scale: on a demo library of about 20,000 users, each job's real run leaves the library
exactly as the hand-written set-based SQL of the benchmark does (sql/baselines/), using a number of
Prefect task runs that grows with the batches, not the users. This is the CI variant of
benchmarks/run.py; it asserts outcomes, never times (timings live in BENCHMARKS.md)."""
from __future__ import annotations

import json
import math
import os

import pytest

from tasks.db.engine import dispose_engines, get_engine
from tasks.devtools import baselines, databases, outcomes, scenario

SCALE_USERS = int(os.environ.get("SCALE_TEST_USERS", "20000"))
BATCH_SIZE = 500


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def scale_library(request, pg_template, tmp_path_factory):
    """One demo library per database kind for the whole module; every test works on clones of it."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('scale')}/library.db"
    else:
        if pg_template is None:
            pytest.skip("PostgreSQL is not reachable (required when CI=true)")
        from conftest import PG_ADMIN_URL

        url = databases.create_pg_database(PG_ADMIN_URL, f"{pg_template}_scale", template=pg_template)
    scenario.build_library(url, SCALE_USERS)
    yield url
    databases.drop_database(url)


@pytest.fixture
def clones(scale_library, monkeypatch):
    """clone(label) -> URL of a fresh copy of the scale library; the last one made is DATABASE_URL."""
    made = []

    def clone(label: str) -> str:
        url = databases.clone_database(scale_library, label)
        made.append(url)
        monkeypatch.setenv("DATABASE_URL", url)
        return url

    yield clone
    dispose_engines()
    for url in made:
        databases.drop_database(url)


def task_runs_of_last_run(url: str) -> int:
    from prefect.settings import PREFECT_API_URL
    from sqlalchemy import text

    with get_engine(url).connect() as conn:
        flow_run_id = conn.execute(text("SELECT flow_run_id FROM job_runs ORDER BY started_at DESC")).scalar()
    dispose_engines()
    return outcomes.count_task_runs(PREFECT_API_URL.value(), flow_run_id)


def batches(units: int) -> int:
    return math.ceil(units / BATCH_SIZE)


def test_purge_at_scale_leaves_the_library_as_the_set_based_baseline(clones, cli):
    baseline_url = clones("base")
    baselines.run_baseline(baseline_url, "purge", baselines.purge_baseline_params())
    flow_url = clones("flow")

    code, out, err = cli(*scenario.PURGE_ARGS, "--batch-size", BATCH_SIZE)

    assert code == 0, err
    summary = json.loads(out)
    # The library has users to purge, debts to waive on the way, and users to keep for every reason.
    assert summary["purged"] > BATCH_SIZE and summary["fines_waived"] > 0
    assert {"ACTIVE_LOANS", "ACTIVE_REQUESTS", "OWES_ABOVE_THRESHOLD", "PROTECTED"} <= set(summary["skipped"])
    assert outcomes.differences(outcomes.snapshot(flow_url), outcomes.snapshot(baseline_url)) == []
    # One task run per batch plus the selection step: orchestration grows with batches, not users.
    assert task_runs_of_last_run(flow_url) <= batches(summary["purged"]) + 1


def test_waive_at_scale_leaves_the_library_as_the_set_based_baseline(clones, cli):
    baseline_url = clones("base")
    baselines.run_baseline(baseline_url, "waive", baselines.waive_baseline_params())
    flow_url = clones("flow")

    code, out, err = cli(*scenario.WAIVE_ARGS, "--batch-size", BATCH_SIZE)

    assert code == 0, err
    summary = json.loads(out)
    assert summary["users_waived"] > BATCH_SIZE and summary["skipped"].get("ABOVE_FINE_THRESHOLD", 0) > 0
    assert outcomes.differences(outcomes.snapshot(flow_url), outcomes.snapshot(baseline_url)) == []
    assert task_runs_of_last_run(flow_url) <= batches(summary["users_waived"]) + 1


def test_merging_many_duplicate_pairs_moves_everything_and_removes_the_duplicates(clones, cli, tmp_path):
    flow_url = clones("merge")
    pairs = scenario.duplicate_pairs(flow_url, 300)
    assert len(pairs) > 100  # the demo library holds duplicates enough to be a real batch job
    pairs[["from_user", "to_user"]].to_csv(tmp_path / "pairs.csv", index=False)
    before = outcomes.held_by(flow_url, [int(i) for i in (*pairs["id_from"], *pairs["id_to"])])

    code, out, err = cli(*scenario.MERGE_ARGS, "--pairs", tmp_path / "pairs.csv", "--batch-size", 100)

    assert code == 0, err
    summary = json.loads(out)
    assert outcomes.merge_problems(flow_url, pairs, before, summary) == []
    assert task_runs_of_last_run(flow_url) <= math.ceil(len(pairs) / 100) + 1
