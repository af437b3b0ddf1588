"""Parameters every batch job shares. Each job's model extends this one; the model is the
documentation, the command line's flags and the Prefect UI form."""
from __future__ import annotations

import datetime as dt
import contextlib
import os
import re
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo

from tasks.errors import InvalidInput


@dataclass(frozen=True)
class Cli:
    """How a parameter appears on the command line, where the contract names it differently from the
    field (`waive_reason` is `--reason`) or takes it in another shape. Put it in the field's
    `Annotated[...]`; a field without one is `--field-name`."""
    flag: str | None = None           # "--reason"; for a bool "--copy-as-internal/--no-copy-as-internal"
    metavar: str | None = None
    split: str | None = None          # a list given once, separated by this ("--segments a,b")
    sets: Any = True                  # the value a bool flag sets when given (`--confirm` sets dry_run False)
    hidden: bool = False              # not on the command line (e.g. structured lists for the API)
    help: str | None = None           # when the flag's meaning differs from the field's description


@dataclass(frozen=True)
class Form:
    """How a parameter appears in the Prefect run form, where its type alone does not say it. Put it in
    the field's `Annotated[...]`.

    `codes`: the code table whose codes the deploy step offers as a dropdown (the flow checks the codes
    against the table at run time too); `internal` codes of it that only the jobs themselves use and a
    person never picks (USER_PURGED). `words`: a flag that may also be left to the job, as a dropdown of
    words -> True / False / None. `lines`: a list the form takes as one text, one item a line (pairs
    pasted from a spreadsheet), where a list of its own fields, one "Add item" at a time, would be clumsy."""
    codes: str | None = None
    internal: tuple[str, ...] = ()
    words: dict[str, Any] | None = field(default=None, hash=False)
    # An optional limit the model reads as None when 0 comes (`max_users`): the form shows a number with
    # default 0 instead of a number-or-None switch. Without it an optional number keeps pydantic's shape,
    # since 0 may mean something there (0 days).
    zero_is_none: bool = False
    lines: bool = False


def form_of(info: FieldInfo) -> Form:
    return next((m for m in info.metadata if isinstance(m, Form)), Form())


def cli_of(field: FieldInfo) -> Cli:
    return next((m for m in field.metadata if isinstance(m, Cli)), Cli())


def flag_of(name: str, field: FieldInfo) -> str:
    flag = cli_of(field).flag or "--" + name.replace("_", "-")
    return flag.split("/")[0]


def title_of(name: str, field: FieldInfo) -> str:
    """The parameter's name in words, as the form shows it."""
    return field.title or name.replace("_", " ").capitalize()


# How a message names a parameter: by its flag on the command line, by its title in the form. The
# surface that checks the parameters sets it; rules that refuse a combination of parameters use `named`.
_NAMES: ContextVar[dict[str, str]] = ContextVar("parameter_names", default={})


@contextlib.contextmanager
def naming(names: dict[str, str]):
    token = _NAMES.set(names)
    try:
        yield
    finally:
        _NAMES.reset(token)


def named(field: str) -> str:
    return _NAMES.get().get(field, field)


def names_in_use() -> dict[str, str]:
    """The names the surface in use has set (empty when none has)."""
    return _NAMES.get()


def offered(field: str) -> bool:
    """Whether the surface in use offers the parameter (the command line has no Pairs text), so that
    a message suggests only what the person can give there."""
    return not _NAMES.get() or field in _NAMES.get()


_PHRASES = (("Input should be greater than or equal to", "must be at least"),
            ("Input should be greater than", "must be more than"),
            ("Input should be less than or equal to", "must be at most"),
            ("Input should be less than", "must be less than"),
            ("Decimal input should have no more than 2 decimal places", "at most 2 decimals (cents)"),
            ("Input should be a valid decimal", "must be an amount such as 12.50"),
            ("Input should be a valid number, unable to parse string as a number", "must be a number"))


def validation_message(exc: ValidationError, names: dict[str, str], model: type[BaseModel] | None = None) -> str:
    """A pydantic error in the operator's words: which parameter (by the name they know it by: a flag
    on the command line, a title in the form), which value, what is wrong, and the valid choices."""
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"] if not isinstance(p, int)]  # list positions say nothing
        field = loc[0] if loc else ""
        where = " ".join([names.get(field, field), *loc[1:]]) or "parameters"
        message = err["msg"].removeprefix("Value error, ")
        for pydantic_says, we_say in _PHRASES:
            message = message.replace(pydantic_says, we_say)
        if err["type"] == "extra_forbidden":
            message = "is not a parameter of this job"
        elif err["type"].startswith("date_"):
            message = "must be a date in the form YYYY-MM-DD"
        elif err["type"] == "literal_error":
            choices = sorted(re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", ""))))
            info = model.model_fields.get(field) if model else None
            what = title_of(field, info).lower() if info else "values"
            message = f"unknown value; valid {what}: {', '.join(choices)}"
        if not loc and err["type"] == "value_error":
            # A rule over several parameters (a model validator) names them itself; its input is all of them.
            parts.append(message)
            continue
        parts.append(f"{where}: {message} (got {err.get('input')!r})")
    return "; ".join(parts)


def parse(model: type["JobParameters"], values: dict[str, Any]) -> "JobParameters":
    """Validate parameters, turning pydantic's errors into InvalidInput in the operator's words."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise InvalidInput(validation_message(exc, _NAMES.get(), model)) from None


def check_codes(conn, parameters: "JobParameters") -> None:
    """Every code a parameter takes from a code table (`Form(codes=...)`) is in the table and not one of
    its internal codes; else InvalidInput naming the parameter and its valid codes. The form offers only
    these, but a code may have been removed since deploying, and the command line and the API send text."""
    from tasks.library.codes import code_values

    problems = []
    for name, info in type(parameters).model_fields.items():
        form = form_of(info)
        if not form.codes:
            continue
        value = getattr(parameters, name)
        given = value if isinstance(value, list) else [value]
        valid = sorted(code_values(conn, form.codes) - set(form.internal))
        unknown = [c for c in given if c not in valid]
        if unknown:
            problems.append(f"{named(name)}: unknown {form.codes.replace('-', ' ')} "
                            f"{', '.join(repr(c) for c in unknown)}; valid codes: {', '.join(valid) or '(none)'}")
    if problems:  # every bad code at once, so one correction is enough
        raise InvalidInput("; ".join(problems))


class JobParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dry_run: Annotated[bool, Cli("--confirm", sets=False, help="Really change the database. Without it the run "
                                 "is a dry run: it computes and reports exactly what it would do, and changes nothing.")] = Field(
        default=True, title="Dry run",
        description="Compute and report exactly what the job would do, and change nothing. "
                    "Switch off (false) to really change the database.",
    )
    as_of: dt.date | None = Field(
        default=None, title="Run date",
        description="The run date the rules judge by (YYYY-MM-DD). Empty means today in the library's time zone.",
    )
    batch_size: int = Field(
        # At most 10,000: a batch's statements bind its ids one by one on SQLite, which takes 32,766.
        default=5000, ge=1, le=10_000,
        description="Units (users, pairs) per database transaction (at most 10,000). A batch is committed "
                    "whole or not at all.",
    )
    require_approval: bool = Field(
        default=False,
        description="For a real run: pause after the preview until someone approves it in the Prefect UI.",
    )
    approval_timeout_seconds: Annotated[int, Cli(hidden=True)] = Field(
        default=3600, ge=10, title="Approval timeout (seconds)",
        description="How long a run waits for approval before it ends without changing anything.",
    )

    @field_validator("*")
    @classmethod
    def _no_blank_codes(cls, value: Any, info: ValidationInfo) -> Any:
        # Every list of codes (Form(codes=...)), whichever job: an empty code is a typing slip, not a code.
        if isinstance(value, list) and form_of(cls.model_fields[info.field_name]).codes \
                and any(not str(c).strip() for c in value):
            raise ValueError("codes may not be empty")
        return value


def library_timezone() -> ZoneInfo | None:
    name = os.environ.get("LIBRARY_TIMEZONE")
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:
        raise InvalidInput(f"LIBRARY_TIMEZONE {name!r} is not a known time zone (e.g. Europe/Oslo)") from None


def run_date_and_time(as_of: dt.date | None) -> tuple[dt.date, dt.datetime]:
    """The run date and the run time (naive UTC, as the database stores times). An explicit as_of
    keeps today's wall-clock time, so 'overdue before the run time' means the same on any date."""
    tz = library_timezone()
    local_now = dt.datetime.now(tz) if tz else dt.datetime.now().astimezone()
    day = as_of or local_now.date()
    local_run = local_now.replace(year=day.year, month=day.month, day=day.day)
    utc_run = local_run.astimezone(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    return day, utc_run


# The form and --help list the job's own parameters first, then these, the technical ones last.
COMMON_ORDER = ("as_of", "dry_run", "require_approval", "batch_size", "approval_timeout_seconds")


def form_order(model: type[JobParameters]) -> list[str]:
    own = [n for n in model.model_fields if n not in COMMON_ORDER]
    return own + [n for n in COMMON_ORDER if n in model.model_fields]
