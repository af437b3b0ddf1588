"""The command line, made with click from the registry of jobs and their parameter models: every job
flag has the field's description as help, its choices and default; pydantic parses and validates.

Exit codes (../shared/CONTRACT.md): 0 the job ran (skips are not errors); 2 invalid parameters or
input, nothing changed; 3 `export` of a user that does not exist; 1 anything else.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import sys
import typing
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import click

from flows.registry import ENTRIES, Entry, entry_for
from tasks.errors import InvalidInput, JobFailed, JobRefused, JobStopped, UserNotFound

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

    from tasks.engine.parameters import JobParameters

# Start-up (BENCHMARKS.md): `--help` imports click and the registry's table, nothing more; a job command
# imports its parameter model (pydantic) for its options, SQLAlchemy for its first statement, and its flow
# module (Prefect, pandas) only once it has checked the database. Every other import is in the function
# that needs it.

EXIT_OK, EXIT_ERROR, EXIT_INVALID, EXIT_NOT_FOUND = 0, 1, 2, 3


def _engine():
    from tasks.db.engine import get_engine
    from tasks.library.init_db import init_db

    engine = get_engine()
    init_db(engine)  # the embedded default is created on first use; idempotent elsewhere
    return engine


# ---------------------------------------------------------------- options from a parameter model


def _choices(annotation: Any) -> tuple[str, ...]:
    """The fixed choices of a Literal field or of a list of Literals."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(candidate) is Literal:
            return tuple(str(a) for a in typing.get_args(candidate))
        if typing.get_origin(candidate) is list:
            inner = _choices(typing.get_args(candidate)[0])
            if inner:
                return inner
    return ()


def _is_list(annotation: Any) -> bool:
    return typing.get_origin(annotation) is list or any(typing.get_origin(a) is list
                                                        for a in typing.get_args(annotation))


def _is_bool(annotation: Any) -> bool:
    return annotation is bool or (bool in typing.get_args(annotation)
                                  and all(a in (bool, type(None)) for a in typing.get_args(annotation)))


def _default_text(field: FieldInfo) -> str | None:
    default = field.get_default(call_default_factory=True)
    if default in (None, [], "") or isinstance(default, bool):
        return None
    return str(default) if not isinstance(default, list) else ",".join(map(str, default))


_METAVARS = {int: "N", float: "NUMBER", Decimal: "AMOUNT", dt.date: "YYYY-MM-DD", str: "TEXT"}


def _metavar(annotation: Any) -> str | None:
    for candidate in (annotation, *typing.get_args(annotation)):
        if candidate in _METAVARS:
            return _METAVARS[candidate]
    return None


def _help(field: FieldInfo, choices: tuple[str, ...]) -> str:
    from tasks.engine.parameters import cli_of

    text = cli_of(field).help or field.description or ""
    if choices:
        text += f" Choices: {', '.join(choices)}."
    if field.is_required():   # its "default" is pydantic's PydanticUndefined
        text += " Required."
    elif (default := _default_text(field)) is not None:
        text += f" Default: {default}."
    return text.strip()


def job_options(model: type[JobParameters]) -> list[click.Option]:
    from tasks.engine.parameters import cli_of, form_order

    options = []
    for name in form_order(model):
        field = model.model_fields[name]
        cli = cli_of(field)
        if cli.hidden:
            continue
        choices = _choices(field.annotation)
        metavar = cli.metavar or ("|".join(choices) if choices else _metavar(field.annotation))
        flag = cli.flag or "--" + name.replace("_", "-")
        if _is_bool(field.annotation):
            # `--a/--no-a` is a choice of three (yes, no, not said); a plain flag sets `cli.sets` when given.
            options.append(click.Option([flag], default=None, help=_help(field, ())) if "/" in flag
                           else click.Option([flag], is_flag=True, default=False, help=_help(field, ())))
        elif _is_list(field.annotation) and not cli.split:
            options.append(click.Option([flag], multiple=True, metavar=metavar, help=_help(field, choices)))
        else:
            options.append(click.Option([flag], metavar=metavar, help=_help(field, choices)))
        options[-1].name = name
    options.append(click.Option(["--json", "as_json"], is_flag=True,
                                help="Print the run summary as one JSON object instead of the report."))
    return options


def values_from_options(model: type[JobParameters], given: dict[str, Any]) -> dict[str, Any]:
    """What the person typed, as values for the parameter model (what they left out takes its default)."""
    from tasks.engine.parameters import cli_of

    values: dict[str, Any] = {}
    for name, value in given.items():
        field = model.model_fields[name]
        cli = cli_of(field)
        if value is None or value == () or value is False and "/" not in (cli.flag or ""):
            continue
        if _is_bool(field.annotation) and "/" not in (cli.flag or ""):
            values[name] = cli.sets
        elif cli.split:
            values[name] = value.split(cli.split)
        elif isinstance(value, tuple):
            values[name] = list(value)
        else:
            values[name] = value
    return values


def flag_names(model: type[JobParameters]) -> dict[str, str]:
    """Each parameter the command line offers by its flag (a hidden one has none: see `offered`)."""
    from tasks.engine.parameters import cli_of, flag_of

    return {name: flag_of(name, field) for name, field in model.model_fields.items() if not cli_of(field).hidden}


def run_job_command(entry: Entry, given: dict[str, Any], as_json: bool) -> int:
    from tasks.cli.local_server import start_local_prefect_server
    from tasks.engine.parameters import naming, parse

    # Started first: the server's start-up runs while the parameters are checked. It dies with this
    # process, however it ends (tasks/cli/local_server.py).
    server = start_local_prefect_server()
    model = entry.load_parameters()
    with naming(flag_names(model)):
        values = parse(model, values_from_options(model, given))
    _engine()  # the command's first statements: the schema is there and current
    # Only now Prefect and pandas (the flow module): ~2 s of imports that a bad flag never waits for.
    flow = entry.load_flow()
    job = flow.job
    from tasks.cli import progress_bar
    from tasks.engine.records import stored_report
    from tasks.engine.runner import check

    with naming(flag_names(model)):
        parameters = check(job, values)
    # The flow checks again (runs from the Prefect UI need it); checking here first lets the command
    # line refuse bad input with its one-line message instead of a failed flow run.
    if server:
        server.wait_until_ready()
    with progress_bar.terminal_progress(progress_bar.progress_wanted(json_output=as_json)), \
            naming(flag_names(model)):  # a guard's refusal names the limit by its flag
        state = flow(**parameters.model_dump(mode="json"), return_state=True)
    data = state.result(raise_on_failure=False)
    if isinstance(data, (InvalidInput, JobRefused, JobFailed)) or (
            isinstance(data, BaseException) and not isinstance(data, JobStopped)):
        raise data  # main() says what stopped the run (the report is in the history) and exits non-zero
    summary = data if isinstance(data, dict) else data.summary
    print(json.dumps(summary) if as_json else stored_report(summary["run_id"]))
    return EXIT_OK


class JobCommand(click.Command):
    """A job's command: its options come from the parameter model; its long help (the definition's
    summary line) imports the flow module, so only `COMMAND --help` pays for it."""

    def __init__(self, entry: Entry):
        def callback(as_json: bool, **given: Any) -> int:
            return run_job_command(entry, given, as_json)

        self.entry = entry
        super().__init__(entry.command, callback=callback, params=job_options(entry.load_parameters()),
                         short_help=entry.title)

    @property
    def help(self) -> str:
        job = self.entry.load_flow().job
        return f"{job.title}: {job.summary_line} Dry run unless --confirm."

    @help.setter
    def help(self, value: str | None) -> None:
        pass  # always the definition's


def job_command(entry: Entry) -> click.Command:
    return JobCommand(entry)


class JobsGroup(click.Group):
    """The commands: the jobs of the registry are made when named (click's lazy group); `--help` lists
    them by the registry's one-line titles without importing them."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *(e.command for e in ENTRIES)})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        entry = entry_for(name)
        if entry is not None and name not in self.commands:
            self.add_command(job_command(entry))
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            entry = entry_for(name)
            if entry is not None and name not in self.commands:
                rows.append((name, entry.title))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=formatter.width - 6 - len(name))))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


# ---------------------------------------------------------------- the other commands
# Each imports what only it needs when it runs, so that `--help` and the job commands start quickly.


@click.group(name="python -m flows", cls=JobsGroup, help="Library user management jobs.")
def cli() -> None:
    pass


@cli.command("init-db", help="Create or upgrade the schema in DATABASE_URL (idempotent).")
def init_db_command() -> int:
    from tasks.db.engine import database_url, get_engine, mask_url
    from tasks.library.init_db import init_db

    revision = init_db(get_engine())
    print(f"schema revision {revision} ready in {mask_url(database_url())}")
    return EXIT_OK


@cli.command("load", help="Load users in the Alma user format; all-or-nothing per file.")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("--attach-to", metavar="PRIMARY_ID",
              help="The files are Alma loans, fees or requests responses: attach their items to this user.")
def load_command(files: tuple[str, ...], attach_to: str | None) -> int:
    from tasks.alma.load import load_files

    print(json.dumps(load_files(_engine(), list(files), attach_to=attach_to)))
    return EXIT_OK


@cli.command("export", help="Print users in the Alma user format, with loans, requests and fees: one id "
                            "gives one JSON object; several ids or --all give JSON Lines (streamed).")
@click.argument("primary_ids", nargs=-1, metavar="PRIMARY_ID...")
@click.option("--all", "all_users", is_flag=True, help="Every user (not purged), as JSON Lines.")
@click.option("--format", "fmt", type=click.Choice(["json", "xml"]), default="json", show_default=True,
              help="JSON, or Alma's XML (one <user>; several ids or --all: <users>, one <user> a line).")
def export_command(primary_ids: tuple[str, ...], all_users: bool, fmt: str) -> int:
    from tasks.alma.export import export_users

    if all_users and primary_ids:
        raise InvalidInput("give either PRIMARY_ID… or --all, not both")
    if not all_users and not primary_ids:
        raise InvalidInput("give at least one PRIMARY_ID, or --all")
    export_users(_engine(), None if all_users else list(primary_ids), sys.stdout, fmt=fmt)
    return EXIT_OK


def _whole_number(flag: str, value: str, minimum: int | None = None) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise InvalidInput(f"{flag} must be a whole number, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise InvalidInput(f"{flag} must be at least {minimum}, got {value!r}")
    return number


@cli.command("demo-data", help="Fill an empty database with a realistic, deterministic demo library.")
@click.option("--users", required=True, metavar="N", help="How many users the demo library has.")
@click.option("--seed", default="42", metavar="S", show_default=True,
              help="The random seed: the same seed gives the same library.")
def demo_data_command(users: str, seed: str) -> int:
    from tasks.devtools.demo import make_demo_library

    counts = make_demo_library(_engine(), users=_whole_number("--users", users, minimum=1),
                               seed=_whole_number("--seed", seed))
    print(json.dumps(counts))
    return EXIT_OK


@cli.command("noisy-library", help="Fill an empty database with a realistic noisy library for Find Duplicate "
                                   "Users (duplicates and look-alikes; the truth in table noisy_truth).")
@click.option("--people", required=True, metavar="N", help="How many people (about 3% get duplicate records).")
@click.option("--seed", default="1", metavar="S", show_default=True, help="The random seed.")
@click.option("--mix", default="default", type=click.Choice(["default", "hard"]), show_default=True,
              help="default: the tuning mix; hard: more and combined corruptions, 5% duplicated.")
def noisy_library_command(people: str, seed: str, mix: str) -> int:
    from tasks.devtools.noisy.load import make_noisy_library

    truth = make_noisy_library(_engine(), _whole_number("--people", people, minimum=1),
                               _whole_number("--seed", seed), mix)
    print(json.dumps({"users": len(truth), "people": int(truth["person_id"].nunique())}))
    return EXIT_OK


@cli.group("duplicates", help="The review queue of Find Duplicate Users: list, accept, reject, review a CSV.")
def duplicates_group() -> None:
    pass


def _pair_ids(values: tuple[str, ...]) -> list[int]:
    if not values:
        raise InvalidInput("give at least one PAIR_ID (python -m flows duplicates list)")
    return [_whole_number("PAIR_ID", v, minimum=1) for v in values]


def _review(status: str, pair_ids: list[int], by: str | None, note: str | None) -> int:
    from tasks.db.engine import write_transaction
    from tasks.engine.records import utcnow
    from tasks.library.review_queue import review

    with write_transaction(_engine()) as conn:
        result = review(conn, pair_ids, status, by=by or os.environ.get("USER"), note=note, now=utcnow())
    for pair_id, what in result.items():
        print(f"pair {pair_id}: {what}")
    return EXIT_OK if all(w == status for w in result.values()) else EXIT_INVALID


@duplicates_group.command("list", help="The pairs in the queue, best first (or write them as a review CSV).")
@click.option("--status", multiple=True, type=click.Choice(["proposed", "accepted", "rejected", "merged"]),
              help="Only pairs of this status (repeatable). Default: every pair.")
@click.option("--csv", "csv_file", metavar="FILE.csv",
              help="Write a review CSV: fill in `decision` (accept/reject) and give it to `duplicates review`.")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of pairs, for scripts.")
def duplicates_list(status: tuple[str, ...], csv_file: str | None, as_json: bool) -> int:
    from tasks.db.engine import read_connection
    from tasks.duplicates.review import write_review_csv
    from tasks.library.review_queue import list_pairs

    with read_connection(_engine()) as conn:
        queue = list_pairs(conn, list(status))
    if csv_file:
        print(f"wrote {write_review_csv(csv_file, queue):,} pairs to {csv_file}")
        return EXIT_OK
    if as_json:
        print(queue.to_json(orient="records", date_format="iso"))
        return EXIT_OK
    for p in queue.itertuples(index=False):
        print(f"{p.pair_id:>6}  {p.status:<8}  {p.from_primary_id} -> {p.to_primary_id}  {p.probability:.4f}  "
              f"round {p.merge_round}{'  merge would refuse: ' + p.merge_refusal if p.merge_refusal else ''}  "
              f"{p.evidence}")
    return EXIT_OK


@duplicates_group.command("accept", help="Accept pairs: `merge --from-queue` merges them.")
@click.argument("pair_ids", nargs=-1, metavar="PAIR_ID...")
@click.option("--by", metavar="NAME", help="Who reviewed (default: $USER).")
@click.option("--note", metavar="TEXT", help="A note kept with the pairs.")
def duplicates_accept(pair_ids: tuple[str, ...], by: str | None, note: str | None) -> int:
    return _review("accepted", _pair_ids(pair_ids), by, note)


@duplicates_group.command("reject", help="Reject pairs: they are never proposed again.")
@click.argument("pair_ids", nargs=-1, metavar="PAIR_ID...")
@click.option("--by", metavar="NAME", help="Who reviewed (default: $USER).")
@click.option("--note", metavar="TEXT", help="A note kept with the pairs.")
def duplicates_reject(pair_ids: tuple[str, ...], by: str | None, note: str | None) -> int:
    return _review("rejected", _pair_ids(pair_ids), by, note)


@duplicates_group.command("review", help="Apply a review CSV (`duplicates list --csv`, decision filled in).")
@click.argument("csv_file", metavar="FILE.csv")
@click.option("--by", metavar="NAME", help="Who reviewed (default: $USER).")
def duplicates_review(csv_file: str, by: str | None) -> int:
    from tasks.duplicates.review import read_review_csv

    decisions = read_review_csv(csv_file)
    code = EXIT_OK
    for status, ids in decisions.items():
        if ids:
            code = max(code, _review(status, ids, by, None))
    return code


@cli.command("history", help="Past job runs, newest first, with their parameters and counts.")
@click.option("--job", metavar="NAME", help="Only runs of this job (e.g. purge-user-records).")
@click.option("--limit", default="20", metavar="N", show_default=True, help="How many runs to show.")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of runs, for scripts.")
def history_command(job: str | None, limit: str, as_json: bool) -> int:
    from tasks.engine.history import print_history

    print_history(_engine(), job=job, limit=_whole_number("--limit", limit, minimum=1), as_json=as_json)
    return EXIT_OK


@cli.group("codes", help="The administrator's code tables (user-group, fee-type, waive-reason, ...).")
def codes_group() -> None:
    pass


@codes_group.command("list", help="The codes of one table, or of every table.")
@click.argument("table", required=False)
def codes_list(table: str | None) -> int:
    from rich.console import Console
    from rich.table import Table

    from tasks.db.engine import read_connection
    from tasks.library.codes import list_codes

    with read_connection(_engine()) as conn:
        rows = list_codes(conn, table)
    shown = Table("table", "code", "description", box=None)
    for r in rows:
        shown.add_row(r["code_table"], r["code"], r["description"])
    Console(width=120).print(shown)
    return EXIT_OK


@codes_group.command("add", help="Add a code to a table, or describe it anew.")
@click.argument("table")
@click.argument("code")
@click.argument("description")
def codes_add(table: str, code: str, description: str) -> int:
    from tasks.db.engine import write_transaction
    from tasks.library.codes import add_code

    with write_transaction(_engine()) as conn:
        new = add_code(conn, table, code, description)
    print(f"{'added' if new else 'updated'} {table} code {code!r}")
    return EXIT_OK


@codes_group.command("remove", help="Remove a code from a table.")
@click.argument("table")
@click.argument("code")
def codes_remove(table: str, code: str) -> int:
    from tasks.db.engine import write_transaction
    from tasks.library.codes import remove_code

    with write_transaction(_engine()) as conn:
        remove_code(conn, table, code)
    print(f"removed {table} code {code!r}")
    return EXIT_OK


@cli.group("policy", help="The delete-user policy: what remains of a purged user.")
def policy_group() -> None:
    pass


@policy_group.command("show", help="The levels; * marks the current one.")
def policy_show() -> int:
    from tasks.library.policy import POLICY_LEVELS, get_policy

    current = get_policy(_engine())
    for level, what in POLICY_LEVELS.items():
        print(f"{'*' if level == current else ' '} {level}: {what}")
    return EXIT_OK


@policy_group.command("set", help="Set the level (keep-fully-reportable, keep-statistics, "
                                  "keep-statistics-remove-id, fully-remove).")
@click.argument("level")
def policy_set(level: str) -> int:
    from tasks.library.policy import set_policy

    changed = set_policy(_engine(), level)
    print(f"delete-user policy is now {level}" + (f"; applied to {changed} users purged earlier" if changed else ""))
    return EXIT_OK


@cli.group("undo-retention", help="How long a merge can be undone: its undo records are kept this many days.")
def undo_retention_group() -> None:
    pass


@undo_retention_group.command("show", help="The retention period in days (default 30).")
def undo_retention_show() -> int:
    from tasks.library.undo_retention import get_retention_days

    print(f"merges can be undone for {get_retention_days(_engine())} days")
    return EXIT_OK


@undo_retention_group.command("set", help="Set the retention period in days; it applies to every undo record "
                                          "at once (older ones go with the next housekeeping run).")
@click.argument("days", type=int)
def undo_retention_set(days: int) -> int:
    from tasks.library.undo_retention import set_retention_days

    set_retention_days(_engine(), days)
    print(f"merges can now be undone for {days} days")
    return EXIT_OK


@undo_retention_group.command("remove-expired", help="Remove the undo records past the retention period now "
                                                     "(the nightly housekeeping flow does this).")
def undo_retention_remove_expired() -> int:
    from tasks.engine.records import utcnow
    from tasks.library.undo_retention import remove_expired

    print(f"removed {remove_expired(_engine(), utcnow())} expired undo records")
    return EXIT_OK


def mask_secrets(text: str, url: str | None) -> str:
    from tasks.db.engine import mask_secrets as mask

    return mask(text, url)


# What ends a command early: the prefix of its one-line message on stderr, and the exit code.
_ENDINGS = ((InvalidInput, "error", EXIT_INVALID), (UserNotFound, "error", EXIT_NOT_FOUND),
            (JobRefused, "refused", EXIT_ERROR), (JobStopped, "error", EXIT_ERROR))


def main(argv: list[str] | None = None) -> int:
    url = os.environ.get("DATABASE_URL")
    try:
        result = cli.main(args=argv, prog_name="python -m flows", standalone_mode=False)
        return result if isinstance(result, int) else EXIT_OK
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return EXIT_INVALID
    except click.exceptions.Abort:
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - the command line's last line of defence: a message, never a password
        from tasks.cli.pipes import stdout_closed_by_reader

        if isinstance(exc, BrokenPipeError) and stdout_closed_by_reader():
            return EXIT_ERROR  # the reader closed our output (`| head -1`): nothing more to say
        prefix, code = next(((p, c) for kind, p, c in _ENDINGS if isinstance(exc, kind)), (None, EXIT_ERROR))
        message = str(exc) if prefix else f"{type(exc).__name__}: {exc}"
        print(f"{prefix or 'error'}: {mask_secrets(message, url)}", file=sys.stderr)
        return code
