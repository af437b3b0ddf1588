"""The command line is made from the registry and the parameter models: the contract's flags exist,
every option says what it does, fixed choices and defaults are shown. No database, no Prefect server."""
from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from flows.cli import cli
from flows.registry import ENTRIES, JOBS

CONTRACT_FLAGS = {
    "purge": {"--grace-period-days", "--record-type", "--user-group", "--max-owed", "--as-of", "--batch-size",
              "--confirm", "--json", "--require-approval"},
    "waive": {"--max-fine-threshold", "--reason", "--comment", "--exclude-overdue", "--user-group", "--fine-type",
              "--as-of", "--batch-size", "--confirm", "--json"},
    "merge": {"--from", "--to", "--pairs", "--segments", "--copy-as-internal", "--no-copy-as-internal", "--confirm",
              "--json"},
    "anonymize": {"--loan-days", "--request-days", "--fee-days", "--library", "--user-group", "--keep-last", "--as-of",
                  "--batch-size", "--confirm", "--json"},
}


def flags(command: click.Command) -> set[str]:
    return {flag for p in command.params if isinstance(p, click.Option) for flag in (*p.opts, *p.secondary_opts)}


def all_commands(group: click.Group, prefix=()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


def test_every_job_of_the_registry_is_a_command_with_the_contract_flags():
    ctx = click.Context(cli)
    assert {job.command for job in JOBS} <= set(cli.list_commands(ctx))
    for command, expected in CONTRACT_FLAGS.items():
        assert expected <= flags(cli.get_command(ctx, command)), command


def test_the_registry_lists_each_job_by_its_definition():
    """`--help` shows the registry's static line for a job without importing it: it must be the job's."""
    assert [(e.command, e.title) for e in ENTRIES] == [(j.command, j.title) for j in JOBS]
    for entry, job in zip(ENTRIES, JOBS):
        assert entry.load_parameters() is job.parameters


def test_help_imports_neither_prefect_nor_pandas():
    import subprocess
    import sys

    probe = ("import sys; from flows.cli import main; main(['--help']); "
             "print(sorted(m for m in ('prefect', 'pandas', 'sqlalchemy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert "Purge User Records" in out and out.strip().endswith("[]")


@pytest.mark.parametrize("path, command", list(all_commands(cli)), ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_every_command_and_option_says_what_it_does(path, command):
    assert command.help, path
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help and len(param.help) > 10, (path, param.opts)


def test_purge_help_shows_descriptions_choices_and_defaults():
    result = CliRunner().invoke(cli, ["purge", "--help"], prog_name="python -m flows")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "--grace-period-days N Days after the purge date before a user is purged" in text
    assert "Choices: PUBLIC, STAFF, CONTACT" in text
    assert "Default: 0." in text and "Default: 5000." in text
    assert "--confirm Really change the database" in text


def test_merge_help_lists_the_segments_and_the_copy_choice():
    text = " ".join(CliRunner().invoke(cli, ["merge", "--help"]).output.split())
    assert "--segments LIST|all" in text and "Choices: contacts, identifiers, notes" in text
    assert "--copy-as-internal / --no-copy-as-internal" in text


@pytest.mark.parametrize("path, command", list(all_commands(cli)), ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_no_option_shows_an_internal_placeholder_as_its_default(path, command):
    for param in command.params:
        if isinstance(param, click.Option):
            assert "Undefined" not in param.help, (path, param.opts, param.help)


def test_waive_help_says_which_options_are_required():
    text = " ".join(CliRunner().invoke(cli, ["waive", "--help"]).output.split())
    assert "A total exactly at the threshold is waived. Required." in text
    assert "(e.g. AMNESTY). Required." in text
