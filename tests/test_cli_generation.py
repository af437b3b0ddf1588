"""The command line is made from the registry and the parameter models: the contract's flags exist,
every option says what it does, fixed choices and defaults are shown. No database, no Prefect server."""
from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from flows.cli import cli
from flows.registry import JOBS

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
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


def test_every_job_of_the_registry_is_a_command_with_the_contract_flags():
    assert {job.command for job in JOBS} <= set(cli.commands)
    for command, expected in CONTRACT_FLAGS.items():
        assert expected <= flags(cli.commands[command]), command


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
