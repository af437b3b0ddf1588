"""Anonymise loan history at demo-library scale, on SQLite and PostgreSQL: the real run leaves the library
exactly as the hand-written set-based SQL does (sql/baselines/anonymize.sql), and the statistics by group
and month add up as before. The CI variant of `benchmarks/run.py --jobs anonymize`; it asserts outcomes,
never times."""
from __future__ import annotations

import os

import pytest

from tasks.db.engine import dispose_engines, get_engine
from tasks.devtools import baselines, databases, outcomes, scenario

USERS = int(os.environ.get("ANONYMIZE_SCALE_USERS", "3000"))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def demo_library(request, pg_template, tmp_path_factory):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('anon_scale')}/library.db"
    else:
        if pg_template is None:
            pytest.skip("PostgreSQL is not reachable (required when CI=true)")
        from conftest import PG_ADMIN_URL

        url = databases.create_pg_database(PG_ADMIN_URL, f"{pg_template}_anon", template=pg_template)
    scenario.build_library(url, USERS)
    yield url
    databases.drop_database(url)


def test_the_flow_does_exactly_what_the_set_based_baseline_does(demo_library, prefect_api, monkeypatch):
    from flows.anonymize_loans import anonymize_loan_history
    from tests.builders import ledger_errors
    from tests.test_anonymize_flow import by_group_and_month

    base_url = databases.clone_database(demo_library, "anon_base")
    flow_url = databases.clone_database(demo_library, "anon_flow")
    try:
        report_before = by_group_and_month(get_engine(flow_url))
        baselines.run_baseline(base_url, "anonymize", baselines.anonymize_baseline_params())
        monkeypatch.setenv("DATABASE_URL", flow_url)
        days = scenario.ANONYMIZE_DAYS
        summary = anonymize_loan_history(as_of=scenario.TODAY, loan_days=days, request_days=days, fee_days=days,
                                         batch_size=200, dry_run=False)
        assert summary["loans_anonymized"] > 0 and summary["requests_anonymized"] > 0
        assert summary["fees_anonymized"] > 0 and summary["users_affected"] > 0
        flow_outcome, base_outcome = outcomes.snapshot(flow_url, "anonymize"), outcomes.snapshot(base_url, "anonymize")
        assert outcomes.differences(flow_outcome, base_outcome) == []
        # Users with statistical categories keep them on their rows (not only the empty list).
        assert (flow_outcome["loans"]["anon_statistics"].dropna() != "[]").any()
        engine = get_engine(flow_url)
        assert by_group_and_month(engine) == report_before
        assert ledger_errors(engine) == []
    finally:
        dispose_engines()
        databases.drop_database(base_url)
        databases.drop_database(flow_url)
