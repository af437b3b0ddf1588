"""The command line: `python -m flows COMMAND ...` (see README and ../shared/CONTRACT.md).

Exit codes: 0 the job ran; 2 invalid parameters or input (nothing changed); 3 `export` of a user
that does not exist; 1 anything else.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Callable

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

EXIT_OK, EXIT_ERROR, EXIT_INVALID, EXIT_NOT_FOUND = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad usage already; make it name the command in its message."""

    def error(self, message: str):  # pragma: no cover - argparse plumbing
        self.print_usage(sys.stderr)
        self.exit(EXIT_INVALID, f"{self.prog}: error: {message}\n")


def _job_common(p: argparse.ArgumentParser, *, as_of: bool = True) -> None:
    if as_of:
        p.add_argument("--as-of", metavar="YYYY-MM-DD", help="the run date (default: today)")
    p.add_argument("--batch-size", type=str, metavar="N", help="users (or pairs) per database transaction")
    p.add_argument("--confirm", action="store_true", help="really change the database (default: dry run)")
    p.add_argument("--require-approval", action="store_true",
                   help="pause after the preview until approved in the Prefect UI")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON instead of the report")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m flows", description="Library user management jobs.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("init-db", help="create or upgrade the schema (idempotent)")

    p = sub.add_parser("load", help="load users in the Alma user format")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--attach-to", metavar="PRIMARY_ID",
                   help="the files are Alma loans, fees or requests responses: attach their items to this user")

    p = sub.add_parser("export", help="print users in the Alma user format")
    p.add_argument("primary_ids", nargs="*", metavar="PRIMARY_ID")
    p.add_argument("--all", action="store_true", help="every user, as JSON Lines")
    p.add_argument("--format", choices=["json", "xml"], default="json", help="JSON (default) or Alma's XML")

    p = sub.add_parser("demo-data", help="fill the database with a deterministic demo library")
    p.add_argument("--users", required=True, metavar="N")
    p.add_argument("--seed", default="42", metavar="S")

    p = sub.add_parser("purge", help="Purge User Records")
    p.add_argument("--grace-period-days", metavar="N")
    p.add_argument("--record-type", action="append", default=[], metavar="CODE")
    p.add_argument("--user-group", action="append", default=[], metavar="CODE")
    p.add_argument("--max-owed", metavar="AMOUNT")
    p.add_argument("--max-users", metavar="N", help="blast-radius guard: most users one run may purge")
    p.add_argument("--max-share", metavar="FRACTION", help="blast-radius guard: most share of all users (0-1)")
    _job_common(p)

    p = sub.add_parser("waive", help="Bulk Fine Waiving")
    p.add_argument("--max-fine-threshold", metavar="AMOUNT", required=True)
    p.add_argument("--reason", metavar="CODE", required=True)
    p.add_argument("--comment", metavar="TEXT")
    p.add_argument("--exclude-overdue", action="store_true")
    p.add_argument("--user-group", action="append", default=[], metavar="CODE")
    p.add_argument("--fine-type", action="append", default=[], metavar="CODE")
    p.add_argument("--created-from", metavar="YYYY-MM-DD", help="only fees created on or after this date")
    p.add_argument("--created-to", metavar="YYYY-MM-DD", help="only fees created on or before this date")
    _job_common(p)

    p = sub.add_parser("merge", help="Merge Users")
    p.add_argument("--from", dest="from_user", metavar="PRIMARY_ID")
    p.add_argument("--to", dest="to_user", metavar="PRIMARY_ID")
    p.add_argument("--pairs", metavar="FILE.csv")
    p.add_argument("--segments", default="all", metavar="LIST|all")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--copy-as-internal", dest="copy_as_internal", action="store_true", default=None)
    g.add_argument("--no-copy-as-internal", dest="copy_as_internal", action="store_false")
    _job_common(p, as_of=False)

    p = sub.add_parser("history", help="past job runs with their parameters and counts")
    p.add_argument("--job", metavar="NAME")
    p.add_argument("--limit", default="20", metavar="N")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("codes", help="the administrator's code tables")
    csub = p.add_subparsers(dest="codes_command", required=True, parser_class=_Parser)
    c = csub.add_parser("list")
    c.add_argument("table", nargs="?")
    c = csub.add_parser("add")
    c.add_argument("table")
    c.add_argument("code")
    c.add_argument("description")
    c = csub.add_parser("remove")
    c.add_argument("table")
    c.add_argument("code")

    p = sub.add_parser("policy", help="the delete-user policy")
    psub = p.add_subparsers(dest="policy_command", required=True, parser_class=_Parser)
    psub.add_parser("show")
    c = psub.add_parser("set")
    c.add_argument("level")
    return parser


def main(argv: list[str] | None = None) -> int:
    from tasks.db.engine import mask_secrets
    from tasks.errors import InvalidInput, JobRefused, UserNotFound

    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int | None] = COMMANDS[args.command]
    try:
        return handler(args) or EXIT_OK
    except InvalidInput as exc:
        print(f"error: {mask_secrets(str(exc), os.environ.get('DATABASE_URL'))}", file=sys.stderr)
        return EXIT_INVALID
    except UserNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except JobRefused as exc:
        print(f"refused: {mask_secrets(str(exc), os.environ.get('DATABASE_URL'))}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence: a message, never a password
        print(f"error: {type(exc).__name__}: {mask_secrets(str(exc), os.environ.get('DATABASE_URL'))}",
              file=sys.stderr)
        return EXIT_ERROR


# ---------------------------------------------------------------- commands


def _engine():
    from tasks.db.engine import get_engine
    from tasks.library.init_db import init_db

    engine = get_engine()
    init_db(engine)  # the embedded default is created on first use; idempotent elsewhere
    return engine


def cmd_init_db(args) -> int:
    from tasks.db.engine import database_url, get_engine, mask_url
    from tasks.library.init_db import init_db

    version = init_db(get_engine())
    print(f"schema version {version} ready in {mask_url(database_url())}")
    return EXIT_OK


def cmd_load(args) -> int:
    from tasks.alma.load import load_files

    counts = load_files(_engine(), args.files, attach_to=args.attach_to)
    print(json.dumps(counts))
    return EXIT_OK


def cmd_export(args) -> int:
    from tasks.alma.export import export_users
    from tasks.errors import InvalidInput

    if args.all and args.primary_ids:
        raise InvalidInput("give either PRIMARY_ID… or --all, not both")
    if not args.all and not args.primary_ids:
        raise InvalidInput("give at least one PRIMARY_ID, or --all")
    export_users(_engine(), None if args.all else args.primary_ids, sys.stdout, fmt=args.format)
    return EXIT_OK


def cmd_demo_data(args) -> int:
    from tasks.devtools.demo_data import make_demo_library
    from tasks.engine.params import parse_int

    counts = make_demo_library(_engine(), users=parse_int("--users", args.users, minimum=1),
                               seed=parse_int("--seed", args.seed))
    print(json.dumps(counts))
    return EXIT_OK


def _print_result(args, summary: dict[str, Any]) -> int:
    from tasks.engine.records import stored_report

    if args.json:
        print(json.dumps(summary))
    else:
        print(stored_report(summary["run_id"]))
    return EXIT_OK


def _validated(validate, parameters):
    """The flow validates its codes too (runs from the Prefect UI need it); checking them here first
    lets the CLI refuse bad codes with its one-line message instead of a failed flow run's traceback."""
    from tasks.db.engine import read_connection

    with read_connection(_engine()) as conn:
        validate(conn, parameters)
    return parameters


def cmd_purge(args) -> int:
    from flows.purge_users import purge_parameters_from_cli, purge_user_records, validate

    parameters = _validated(validate, purge_parameters_from_cli(args))
    return _print_result(args, purge_user_records(parameters=parameters))


def cmd_waive(args) -> int:
    from flows.waive_fines import bulk_fine_waiving, validate, waive_parameters_from_cli

    parameters = _validated(validate, waive_parameters_from_cli(args))
    return _print_result(args, bulk_fine_waiving(parameters=parameters))


def cmd_merge(args) -> int:
    from flows.merge_users import merge_parameters_from_cli, merge_users

    return _print_result(args, merge_users(parameters=merge_parameters_from_cli(args)))


def cmd_history(args) -> int:
    from tasks.engine.history import print_history
    from tasks.engine.params import parse_int

    print_history(_engine(), job=args.job, limit=parse_int("--limit", args.limit, minimum=1), as_json=args.json)
    return EXIT_OK


def cmd_codes(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from tasks.library.codes import add_code, list_codes, remove_code
    from tasks.db.engine import write_transaction

    engine = _engine()
    with write_transaction(engine) as conn:
        if args.codes_command == "list":
            rows = list_codes(conn, args.table)
            table = Table("table", "code", "description", box=None)
            for r in rows:
                table.add_row(r["code_table"], r["code"], r["description"])
            Console(width=120).print(table)
        elif args.codes_command == "add":
            new = add_code(conn, args.table, args.code, args.description)
            print(f"{'added' if new else 'updated'} {args.table} code {args.code!r}")
        else:
            remove_code(conn, args.table, args.code)
            print(f"removed {args.table} code {args.code!r}")
    return EXIT_OK


def cmd_policy(args) -> int:
    from tasks.library.policy import POLICY_LEVELS, get_policy, set_policy

    engine = _engine()
    if args.policy_command == "show":
        current = get_policy(engine)
        for level, what in POLICY_LEVELS.items():
            print(f"{'*' if level == current else ' '} {level}: {what}")
    else:
        changed = set_policy(engine, args.level)
        print(f"delete-user policy is now {args.level}" + (f"; applied to {changed} users purged earlier" if changed else ""))
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int | None]] = {
    "init-db": cmd_init_db,
    "load": cmd_load,
    "export": cmd_export,
    "demo-data": cmd_demo_data,
    "purge": cmd_purge,
    "waive": cmd_waive,
    "merge": cmd_merge,
    "history": cmd_history,
    "codes": cmd_codes,
    "policy": cmd_policy,
}

if __name__ == "__main__":
    sys.exit(main())
