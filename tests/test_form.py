"""The Prefect run form made from a job's parameter model: shapes the 3.9.1 UI renders well (no `None`
switches, amounts as numbers, choices as dropdowns, technical fields last), what the form sends read
back by the model, and the code-table dropdowns the deploy step adds."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from prefect.utilities.callables import parameter_schema

from deployments.build import code_choices, runner_deployments
from flows.anonymize_loans import ANONYMIZE, anonymize_loan_history
from flows.find_duplicates import FIND_DUPLICATES, find_duplicate_users
from flows.merge_users import merge_users
from flows.purge_users import purge_user_records
from flows.unmerge_users import unmerge_users
from flows.waive_fines import WAIVE, bulk_fine_waiving
from tasks.anonymize.parameters import AnonymizeParameters
from tasks.engine.flow import field_titles, form_values
from tasks.engine.parameters import COMMON_ORDER, naming, parse
from tasks.errors import InvalidInput
from tasks.merge.parameters import MergePair, MergeParameters
from tasks.purge.parameters import PurgeParameters
from tasks.unmerge.parameters import UnmergeParameters
from tasks.waive.parameters import WaiveParameters

JOB_FLOWS = (purge_user_records, bulk_fine_waiving, merge_users, anonymize_loan_history, unmerge_users,
             find_duplicate_users)
# What each deployed form offers from the code tables in these tests.
TABLES = {"waive-reason": {"AMNESTY", "USER_PURGED", "ERROR"}, "fee-type": {"OVERDUEFINE"},
          "user-group": {"STAFF", "GRAD"}, "library": {"MAIN", "WEST"}}


def props(flow):
    schema = parameter_schema(flow).model_dump()
    return dict(sorted(schema["properties"].items(), key=lambda kv: kv[1]["position"]))


def deployed(flow_name: str, name: str = "ad-hoc"):
    """A deployment of prefect.yaml as deploy.py registers it, with the codes of TABLES."""
    deployments = {(d.flow_name, d.name): d for _, d in runner_deployments(from_source=False, read_codes=TABLES.__getitem__)}
    return deployments[(flow_name, name)]


@pytest.mark.parametrize("flow", JOB_FLOWS, ids=lambda f: f.name)
def test_no_field_of_any_job_offers_a_type_switch_and_every_title_is_in_words(flow):
    for name, prop in props(flow).items():
        assert "anyOf" not in prop and prop.get("default", "") is not None, (flow.name, name, prop)
        assert "multipleOf" not in prop and "$ref" not in str(prop), (flow.name, name, prop)
        assert "_" not in prop["title"] and prop["title"][0].isupper(), (flow.name, name, prop["title"])
    assert list(props(flow))[-len(COMMON_ORDER):] == list(COMMON_ORDER)  # the technical ones last
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
    assert code_choices(WAIVE.parameters, TABLES.__getitem__) == {
        "user_groups": ["GRAD", "STAFF"], "fine_types": ["OVERDUEFINE"], "waive_reason": ["AMNESTY", "ERROR"]}
    deployments = {(d.flow_name, d.name): d for _, d in runner_deployments(from_source=False, read_codes=TABLES.__getitem__)}
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


def test_the_anonymise_form_starts_its_day_limits_empty_and_offers_libraries_and_user_groups():
    form = props(anonymize_loan_history)
    assert list(form)[:6] == ["loan_days", "request_days", "fee_days", "libraries", "user_groups", "keep_last"]
    for name in ("loan_days", "request_days", "fee_days"):
        # An empty number field: 0 days means "returned before the run date", so no number can say "leave alone".
        assert form[name] == {"type": "integer", "minimum": 0, "maximum": 36_500, "title": form[name]["title"],
                              "description": form[name]["description"], "position": form[name]["position"]}
    assert form["loan_days"]["title"] == "Loans older than (days)"
    assert code_choices(ANONYMIZE.parameters, TABLES.__getitem__) == {
        "libraries": ["MAIN", "WEST"], "user_groups": ["GRAD", "STAFF"]}
    nightly = deployed("anonymize-loan-history", "nightly")
    schema = nightly._parameter_openapi_schema
    assert schema.properties["libraries"]["items"]["enum"] == ["MAIN", "WEST"]
    assert schema.properties["user_groups"]["items"]["enum"] == ["GRAD", "STAFF"]
    assert {"loan_days", "request_days", "fee_days", "libraries", "user_groups"}.isdisjoint(schema.required)
    assert "keep_last" in schema.required
    assert (nightly.parameters["loan_days"], nightly.parameters["keep_last"]) == (365, 5)
    assert "request_days" in nightly.parameters  # the nightly's own 365; a form default never overrides it


def test_an_anonymise_form_with_every_day_limit_left_empty_is_refused_naming_them_by_title():
    sent = {"loan_days": 30, "libraries": ["MAIN"]}  # the form sends nothing for an empty field
    assert parse(AnonymizeParameters, form_values(AnonymizeParameters, sent)).request_days is None
    with naming(field_titles(AnonymizeParameters)), pytest.raises(InvalidInput) as caught:
        parse(AnonymizeParameters, form_values(AnonymizeParameters, {"keep_last": 2}))
    assert str(caught.value) == ("give at least one of Loans older than (days), Requests older than (days), "
                                 "Fees older than (days)")


def test_the_merge_form_takes_its_pairs_as_lines_of_a_text_area():
    form = props(merge_users)
    assert list(form)[:6] == ["from_user", "to_user", "pairs", "pairs_file", "merge_round", "from_queue"]
    assert form["pairs"] == {**form["pairs"], "type": "string", "default": ""}
    sent = {"pairs": "dup-1,keep-1\n\n  dup-2 , keep-2 ,internal\ndup-3\tkeep-3\tExternal\n"}
    p = parse(MergeParameters, form_values(MergeParameters, sent))
    assert p.all_pairs() == [("dup-1", "keep-1", None), ("dup-2", "keep-2", True), ("dup-3", "keep-3", False)]
    # The API may still send the pairs as objects.
    assert parse(MergeParameters, {"pairs": [{"from_user": "a", "to_user": "b"}]}).pairs == [
        MergePair(from_user="a", to_user="b")]
    schema = deployed("merge-users")._parameter_openapi_schema
    assert "pairs" not in schema.required and schema.properties["pairs"]["type"] == "string"


@pytest.mark.parametrize("line, says", [
    ("dup-1", "Pairs: a pair is a line FROM,TO (the primary ids of the duplicate and of the record to keep), "
              "optionally ,internal or ,external (got 'dup-1')"),
    ("dup-1,", "Pairs: a pair is a line FROM,TO"),
    ("a,b,c,d", "Pairs: a pair is a line FROM,TO"),
    ("a,b,perhaps", "Pairs: the third value (copy as internal) must be internal or external, true or false "
                    "(or empty) (got 'a,b,perhaps')"),
])
def test_a_bad_line_of_the_merge_pairs_is_one_line_naming_the_field_and_the_line(line, says):
    with naming(field_titles(MergeParameters)), pytest.raises(InvalidInput) as caught:
        parse(MergeParameters, form_values(MergeParameters, {"pairs": f"ok-1,ok-2\n{line}"}))
    assert str(caught.value).startswith(says) and "\n" not in str(caught.value)


def test_the_unmerge_and_find_duplicates_forms():
    unmerge = props(unmerge_users)
    assert list(unmerge)[:2] == ["merge_run_id", "from_users"]
    assert unmerge["from_users"]["type"] == "string" and unmerge["from_users"]["title"] == "Only these pairs (From users)"
    p = parse(UnmergeParameters, form_values(UnmergeParameters, {"merge_run_id": "r1", "from_users": "dup-1\n dup-2 \n"}))
    assert p.from_users == ["dup-1", "dup-2"]
    assert parse(UnmergeParameters, form_values(UnmergeParameters, {"merge_run_id": "r1", "from_users": ""})).from_users == []
    assert "merge_run_id" in deployed("unmerge-users")._parameter_openapi_schema.required

    duplicates = props(find_duplicate_users)
    assert duplicates["min_probability"] == {**duplicates["min_probability"], "type": "number", "minimum": 0, "maximum": 1}
    assert code_choices(FIND_DUPLICATES.parameters, TABLES.__getitem__) == {"user_groups": ["GRAD", "STAFF"]}
    assert deployed("find-duplicate-users")._parameter_openapi_schema.properties["user_groups"]["items"]["enum"] == [
        "GRAD", "STAFF"]


@pytest.mark.parametrize("model, field, values", [
    ("tasks.waive.parameters:WaiveParameters", "fine_types", {"max_fine_threshold": "1", "waive_reason": "AMNESTY"}),
    ("tasks.anonymize.parameters:AnonymizeParameters", "libraries", {"loan_days": 30}),
    ("tasks.purge.parameters:PurgeParameters", "user_groups", {}),
])
def test_an_empty_code_in_a_list_of_codes_is_refused_naming_the_field(model, field, values):
    import importlib

    from pydantic import ValidationError

    module, name = model.split(":")
    parameters = getattr(importlib.import_module(module), name)
    with pytest.raises(ValidationError, match=f"(?s){field}.*codes may not be empty"):
        parameters(**values, **{field: ["UNDERGRAD", " "]})


@pytest.mark.parametrize("values", [
    {"max_fine_threshold": 10.5, "waive_reason": "AMNESTY", "fine_types": ["OVERDUEFINE"], "as_of": None,
     "dry_run": True, "batch_size": 5000},
    {"pairs": [{"from_primary_id": "a", "to_primary_id": "b"}], "nested": {"k": [1, 2.5, None, True]}},
    {"when": dt.date(2026, 12, 1), "amount": Decimal("1.10"), "groups": ("A", "B")},   # not JSON: Prefect's own
])
def test_flow_run_parameters_are_stored_as_prefect_stores_them(values):
    from prefect import Flow

    assert bulk_fine_waiving.serialize_parameters(values) == Flow.serialize_parameters(bulk_fine_waiving, values)


def test_a_command_line_run_does_not_import_fastapi_to_store_its_parameters():
    import subprocess
    import sys

    probe = ("import sys; from flows.waive_fines import bulk_fine_waiving as f; "
             "stored = f.serialize_parameters({'max_fine_threshold': 10.0, 'waive_reason': 'AMNESTY', 'as_of': None}); "
             "print(stored['waive_reason'], 'fastapi' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["AMNESTY", "False"]
