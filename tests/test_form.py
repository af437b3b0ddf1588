"""The Prefect run form made from a job's parameter model: shapes the 3.9.1 UI renders well (no `None`
switches, amounts as numbers, choices as dropdowns, technical fields last), what the form sends read
back by the model, and the code-table dropdowns the deploy step adds."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from prefect.utilities.callables import parameter_schema

from deployments.build import code_choices, runner_deployments
from flows.merge_users import merge_users
from flows.purge_users import purge_user_records
from flows.waive_fines import WAIVE, bulk_fine_waiving
from tasks.engine.flow import form_values
from tasks.engine.parameters import naming, parse
from tasks.errors import InvalidInput
from tasks.merge.parameters import MergeParameters
from tasks.purge.parameters import PurgeParameters
from tasks.waive.parameters import WaiveParameters


def props(flow):
    schema = parameter_schema(flow).model_dump()
    return dict(sorted(schema["properties"].items(), key=lambda kv: kv[1]["position"]))


def test_no_field_offers_a_type_switch_and_amounts_are_numbers_with_a_minimum():
    for flow in (purge_user_records, bulk_fine_waiving, merge_users):
        for name, prop in props(flow).items():
            assert "anyOf" not in prop and prop.get("default", "") is not None, (flow.name, name, prop)
            assert "multipleOf" not in prop
    waive = props(bulk_fine_waiving)
    assert waive["max_fine_threshold"] == {**waive["max_fine_threshold"], "type": "number", "minimum": 0.01}
    assert waive["created_from"]["format"] == "date" and waive["created_from"]["default"] == ""
    assert props(purge_user_records)["max_owed"]["type"] == "number"


def test_the_job_own_fields_come_first_and_the_technical_ones_last():
    order = list(props(bulk_fine_waiving))
    assert order[:2] == ["user_groups", "fine_types"]
    assert order[-5:] == ["as_of", "dry_run", "require_approval", "batch_size", "approval_timeout_seconds"]
    assert props(bulk_fine_waiving)["max_fine_threshold"]["title"] == "Fine threshold"


def test_fixed_choices_are_dropdowns_and_an_unset_flag_is_a_choice_in_words():
    purge, merge = props(purge_user_records), props(merge_users)
    assert purge["record_types"]["items"]["enum"] == ["PUBLIC", "STAFF", "CONTACT"]
    assert merge["segments"]["default"] == merge["segments"]["items"]["enum"]  # all, shown as chosen
    assert merge["copy_as_internal"]["enum"] == ["As the To user's account type", "Internal", "External"]
    assert form_values(MergeParameters, {"copy_as_internal": "External"}) == {"copy_as_internal": False}
    assert form_values(MergeParameters, {"copy_as_internal": "As the To user's account type"}) == {
        "copy_as_internal": None}


def test_what_the_form_sends_means_what_the_model_means():
    sent = {"max_fine_threshold": 20.5, "waive_reason": "AMNESTY", "created_from": "", "created_to": "",
            "comment": "", "user_groups": [], "as_of": ""}
    p = parse(WaiveParameters, form_values(WaiveParameters, sent))
    assert (p.max_fine_threshold, p.created_from, p.comment, p.as_of) == (Decimal("20.5"), None, None, None)
    purge = parse(PurgeParameters, form_values(PurgeParameters, {"max_users": 0, "max_share": 0}))
    assert (purge.max_users, purge.max_share) == (None, None)  # 0: no limit
    assert parse(WaiveParameters, {"max_fine_threshold": 5, "waive_reason": "X", "as_of": "2026-12-20"}
                 ).as_of == dt.date(2026, 12, 20)


@pytest.mark.parametrize("sent, says", [
    ({"max_fine_threshold": 20.505}, "Fine threshold: at most 2 decimals (cents) (got 20.505)"),
    ({"max_fine_threshold": -5}, "Fine threshold: must be more than 0"),
    ({"waive_reason": "USER_PURGED"}, "Waive reason: USER_PURGED is kept for the fees Purge User Records waives"),
])
def test_bad_input_is_one_line_naming_the_field_by_its_title(sent, says):
    titles = {n: f.title or n for n, f in WaiveParameters.model_fields.items()}
    with naming(titles), pytest.raises(InvalidInput) as caught:
        parse(WaiveParameters, form_values(WaiveParameters, {"max_fine_threshold": 5, "waive_reason": "AMNESTY", **sent}))
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_the_deploy_step_offers_the_code_tables_without_internal_codes_and_no_optional_labels():
    tables = {"waive-reason": {"AMNESTY", "USER_PURGED", "ERROR"}, "fee-type": {"OVERDUEFINE"},
              "user-group": {"STAFF", "GRAD"}}
    assert code_choices(WAIVE.parameters, tables.__getitem__) == {
        "user_groups": ["GRAD", "STAFF"], "fine_types": ["OVERDUEFINE"], "waive_reason": ["AMNESTY", "ERROR"]}
    deployments = {(d.flow_name, d.name): d for _, d in runner_deployments(from_source=False, read_codes=tables.__getitem__)}
    waive = deployments[("bulk-fine-waiving", "ad-hoc")]
    schema = waive._parameter_openapi_schema
    assert schema.properties["waive_reason"]["enum"] == ["AMNESTY", "ERROR"]
    assert schema.properties["user_groups"]["items"]["enum"] == ["GRAD", "STAFF"]
    assert "created_from" not in schema.required and "user_groups" not in schema.required
    assert "dry_run" in schema.required and "waive_reason" in schema.required
    assert waive.parameters["dry_run"] is True and waive.parameters["user_groups"] == []
    nightly = deployments[("purge-user-records", "nightly")]
    assert nightly.parameters["max_users"] == 5000 and nightly.parameters["grace_period_days"] == 30


def test_codes_are_checked_against_the_table_naming_the_field_and_the_valid_codes(tmp_path):
    from tasks.db.engine import get_engine, read_connection
    from tasks.engine.parameters import check_codes
    from tasks.library.init_db import init_db

    engine = get_engine(f"sqlite:///{tmp_path}/library.db")
    init_db(engine)
    parameters = WaiveParameters(max_fine_threshold=Decimal("5"), waive_reason="BIRTHDAY", fine_types=["OVERDUEFINE"])
    with naming({"waive_reason": "Waive reason"}), read_connection(engine) as conn, pytest.raises(InvalidInput) as caught:
        check_codes(conn, parameters)
    assert str(caught.value) == ("Waive reason: unknown waive reason 'BIRTHDAY'; "
                                 "valid codes: AMNESTY, ERROR, GOODWILL, UNCOLLECTABLE")
