"""Anonymise loan history at demo-library scale, on SQLite and PostgreSQL: the real run leaves the library
exactly as the benchmark's hand-written set-based SQL does (benchmarks/sql/anonymize_baseline*.sql), and
the statistics by group and month add up as before. The CI variant of `benchmarks/run.py --jobs anonymize`;
it asserts outcomes, never times."""
from __future__ import annotations

import os

import pytest

from benchmarks import library_scale as scale

USERS = int(os.environ.get("ANONYMIZE_SCALE_USERS", "3000"))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def demo_library(request, pg_template, tmp_path_factory):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('anon_scale')}/library.db"
    else:
        if pg_template is None:
            pytest.skip("PostgreSQL is not reachable (required when CI=true)")
        from conftest import PG_ADMIN_URL

        url = scale.create_pg_database(PG_ADMIN_URL, f"{pg_template}_anon", template=pg_template)
    scale.build_library(url, USERS)
    yield url
    scale.drop_database(url)


def test_the_flow_does_exactly_what_the_set_based_baseline_does(demo_library, prefect_api, monkeypatch):
    from flows.anonymize_loans import anonymize_loan_history
    from tasks.anonymize.parameters import AnonymizeParameters
    from tests.builders import ledger_errors
    from tests.test_anonymize_flow import by_group_and_month

    base_url = scale.clone_database(demo_library, "anon_base")
    flow_url = scale.clone_database(demo_library, "anon_flow")
    try:
        report_before = by_group_and_month(scale.get_engine(flow_url))
        scale.run_baseline(base_url, scale.baseline_name(base_url, "anonymize_baseline"),
                           scale.anonymize_baseline_params())
        monkeypatch.setenv("DATABASE_URL", flow_url)
        days = scale.ANONYMIZE_DAYS
        summary = anonymize_loan_history(parameters=AnonymizeParameters(
            as_of=scale.TODAY, loan_days=days, request_days=days, fee_days=days, batch_size=200, dry_run=False))
        assert summary["loans_anonymized"] > 0 and summary["requests_anonymized"] > 0
        assert summary["fees_anonymized"] > 0 and summary["users_affected"] > 0
        assert scale.differences(scale.snapshot(flow_url, "anonymize"), scale.snapshot(base_url, "anonymize")) == []
        engine = scale.get_engine(flow_url)
        assert by_group_and_month(engine) == report_before
        assert ledger_errors(engine) == []
    finally:
        scale.dispose_engines()
        scale.drop_database(base_url)
        scale.drop_database(flow_url)
