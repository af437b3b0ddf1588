"""Anonymise loan history as the operator meets it without a database: the command's flags (made from
the parameter model) with their help, and the nightly deployment's parameters. No Prefect server."""
from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from flows.anonymize_loans import anonymize_loan_history
from flows.cli import cli
from tasks.anonymize.parameters import AnonymizeParameters

CONTRACT_FLAGS = ("--loan-days", "--request-days", "--fee-days", "--library", "--user-group", "--keep-last",
                  "--as-of", "--batch-size", "--confirm", "--json")


def nightly() -> dict:
    config = yaml.safe_load((Path(__file__).resolve().parent.parent / "prefect.yaml").read_text(encoding="utf-8"))
    (deployment,) = [d for d in config["deployments"] if d["entrypoint"] == "flows/anonymize_loans.py:anonymize_loan_history"]
    return deployment


def test_anonymize_help_shows_every_contract_flag_with_its_help():
    result = CliRunner().invoke(cli, ["anonymize", "--help"], prog_name="python -m flows")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for flag in CONTRACT_FLAGS:
        assert flag in text, flag
    command = cli.commands["anonymize"]
    for option in command.params:
        assert option.help and len(option.help) > 20, option.opts
    assert "--loan-days N Returned loans (loan_status COMPLETE)" in text
    assert "--library CODE Only rows of these libraries" in text
    assert "--keep-last K The K most recently returned loans" in text and "Default: 0" in text
    assert "Dry run unless --confirm" in text


def test_the_nightly_deployment_is_a_dry_run_on_quick_run_and_real_on_its_schedule():
    deployment = nightly()
    assert deployment["name"] == "nightly"
    quick = AnonymizeParameters.model_validate(deployment["parameters"])
    assert quick.dry_run is True
    assert (quick.loan_days, quick.request_days, quick.fee_days, quick.keep_last) == (365, 365, 365, 5)
    (schedule,) = deployment["schedules"]
    assert schedule["parameters"] == {"dry_run": False}
    scheduled = AnonymizeParameters.model_validate({**deployment["parameters"], **schedule["parameters"]})
    assert scheduled.dry_run is False
    # Flat: every parameter is a field of the flow's form.
    form = anonymize_loan_history.parameters.properties
    assert set(deployment["parameters"]) <= set(form) and set(schedule["parameters"]) <= set(form)
