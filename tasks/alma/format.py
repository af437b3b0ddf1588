"""The Alma user format: which JSON field is which column, of which kind, with which code table.

This is the one description of the format. Load (`tasks.alma.load`) checks each record field by field
with plain functions compiled from it (one per kind; no model object per row) and turns it into rows;
export (`tasks.alma.export`) turns rows back into JSON with the same field list. A field added here
therefore loads and exports without touching either.

Lossless: what a record carries beyond these fields (Alma fields outside the spec, fields never seen)
goes to the row's `extra` column as a JSON object and comes back on export as it was loaded; so does
the exact form of a typed field its column cannot hold (a null boolean, a code object with no value
or with more than value/desc, a fee barcode as {"value", "link"}), under the key `@typed`, used on
export only while the column still holds what was loaded (a job that changes the value wins).

Column lengths and "required" come from `tasks.db.schema`, so the format cannot drift from the tables.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Callable, NamedTuple, Optional

from sqlalchemy import Column, Table
from sqlalchemy.dialects import sqlite

from tasks.alma import jsonio
from tasks.library.codes import CODE_TABLES
from tasks.library.money import CENT, to_minor
from tasks.db.schema import (
    fee_transactions,
    fees,
    loans,
    requests,
    user_addresses,
    user_attachments,
    user_blocks,
    user_emails,
    user_identifiers,
    user_notes,
    user_phones,
    user_proxies,
    user_roles,
    user_statistics,
    users,
)

# The kinds of field, each with one way in (validate) and one way out (to_json).
TEXT = "text"          # a JSON string
BOOL = "bool"          # true / false
DATE = "date"          # "YYYY-MM-DD", optionally with Alma's trailing "Z"
TIME = "time"          # ISO 8601, or epoch milliseconds (Alma's own samples); stored as naive UTC
MONEY = "money"        # JSON number or decimal string -> Decimal (2 places); stored in cents. Negative only
                       # in a CREDIT fee (checked by load), as Alma sends credits
CODE = "code"          # {"value", "desc"}: value in a code table
CODES = "codes"        # [{"value", "desc"}, ...]: stored as comma-separated codes
CHOICE = "choice"      # a plain string from a fixed list (loan_status, segment_type, ...)
BASE64 = "base64"      # bytes, written as base64 text
REF = "ref"            # a string, or Alma's {"value": ..., "link": ...} (a fee's barcode): the value is stored

SEGMENT_TYPES = ("Internal", "External")
MAX_AMOUNT = Decimal("1000000000000")  # far above any library fee, far below BIGINT cents
CODE_MAX_LENGTH = 64  # codes.code


class CodeRef(NamedTuple):
    value: str
    desc: str | None


@dataclass(frozen=True)
class Field:
    """One JSON field of a user or of one of its list items."""

    name: str
    kind: str = TEXT
    column: str | None = None          # when the column is named differently from the JSON field
    code_table: str | None = None      # for CODE and CODES fields
    choices: tuple[str, ...] = ()      # allowed values (CODE and CHOICE)
    required: bool | None = None       # None: required when the column is NOT NULL without a default
    default: Any = None                # stored when the file leaves the field out or null
    column_name: str = dataclass_field(init=False)

    def __post_init__(self) -> None:
        # Computed once: it is read for every field of every row of a 100,000-user file.
        object.__setattr__(self, "column_name", self.column or self.name)


@dataclass(frozen=True)
class Segment:
    """A list in the user object (`user_identifier`, `fee`, ...) and the table its items go to."""

    name: str
    table: Table
    fields: tuple[Field, ...]
    count_as: str                            # its key in the load counts
    under: str | None = None                 # the object holding the list (`contact_info`)
    unique: tuple[str, ...] = ()             # fields unique across the library (checked on load)
    unique_per_user: tuple[str, ...] = ()    # fields unique within one user
    children: tuple["Segment", ...] = ()     # lists inside each item (a fee's transactions)
    parent_column: str = "user_id"           # the column that links an item to its owner

    @property
    def path(self) -> str:
        return f"{self.under}.{self.name}" if self.under else self.name


def unique_columns(segment: Segment, per_user: bool = False) -> list[str]:
    """The columns of the segment's key unique in the library (with `per_user`: within one user)."""
    by_name = {f.name: f.column_name for f in segment.fields}
    return [by_name[name] for name in (segment.unique_per_user if per_user else segment.unique)]


def checked_item_by_item(segment: Segment) -> bool:
    """Whether load checks the list's items one by one (they need more than their fields: a key per
    user, lists of their own, a fee's ledger), not all in one generated call (`compile_items`)."""
    return bool(segment.unique_per_user or segment.children or segment.name == "fee")


def _segment_type() -> Field:
    return Field("segment_type", CHOICE, choices=SEGMENT_TYPES)


USER_FIELDS: tuple[Field, ...] = (
    Field("primary_id", required=True),
    Field("first_name"),
    Field("middle_name"),
    Field("last_name"),
    Field("user_group", CODE, code_table="user-group"),
    Field("record_type", CODE, code_table="record-type", choices=("PUBLIC", "STAFF", "CONTACT")),
    # Missing or null: stored NULL ("not known") and exported null; merge treats it as EXTERNAL.
    Field("account_type", CODE, code_table="account-type", choices=("INTERNAL", "EXTERNAL")),
    Field("status", CODE, code_table="user-status"),
    Field("expiry_date", DATE),
    Field("purge_date", DATE),
    Field("birth_date", DATE),
    Field("external_id"),
    Field("protected", BOOL, default=False),
)

TRANSACTION = Segment(
    "transaction", fee_transactions, count_as="transactions", parent_column="fee_id", fields=(
        Field("type", CODE, code_table="transaction-type"),
        Field("amount", MONEY, column="amount_minor"),
        Field("reason", CODE, code_table="waive-reason"),
        Field("comment"),
        Field("transaction_time", TIME),
    ),
)

SEGMENTS: tuple[Segment, ...] = (
    Segment("address", user_addresses, count_as="addresses", under="contact_info", fields=(
        Field("line1"), Field("line2"), Field("line3"), Field("line4"), Field("line5"),
        Field("city"),
        Field("state_province"),
        Field("postal_code"),
        Field("country", CODE, code_table="country"),
        Field("address_note"),
        Field("start_date", DATE),
        Field("end_date", DATE),
        Field("address_type", CODES, column="address_types", code_table="address-type"),
        Field("preferred", BOOL, default=False),
        _segment_type(),
    )),
    Segment("email", user_emails, count_as="emails", under="contact_info", fields=(
        Field("email_address"),
        Field("description"),
        Field("email_type", CODES, column="email_types", code_table="email-type"),
        Field("preferred", BOOL, default=False),
        _segment_type(),
    )),
    Segment("phone", user_phones, count_as="phones", under="contact_info", fields=(
        Field("phone_number"),
        Field("phone_type", CODES, column="phone_types", code_table="phone-type"),
        Field("preferred", BOOL, default=False),
        Field("preferred_sms", BOOL, default=False),
        _segment_type(),
    )),
    Segment("user_identifier", user_identifiers, count_as="identifiers", unique=("id_type", "value"), fields=(
        Field("id_type", CODE, code_table="id-type"),
        Field("value"),
        Field("status"),
        Field("note"),
        _segment_type(),
    )),
    Segment("user_note", user_notes, count_as="notes", fields=(
        Field("note_type", CODE, code_table="note-type"),
        Field("note_text"),
        Field("user_viewable", BOOL, default=False),
        Field("popup_note", BOOL, default=False),
        Field("created_by"),
        Field("created_date", TIME),
        _segment_type(),
    )),
    Segment("user_role", user_roles, count_as="roles", unique_per_user=("role_type", "scope"), fields=(
        Field("role_type", CODE, code_table="role-type"),
        # Alma leaves scope out for institution-wide roles; the unique key needs a value.
        Field("scope", CODE, code_table="library", required=False, default=""),
        Field("status", CODE, code_table="role-status"),
    )),
    Segment("user_block", user_blocks, count_as="blocks", fields=(
        Field("block_type", CODE, code_table="block-type"),
        Field("block_description", CODE, code_table="block-description"),
        Field("block_status"),
        Field("block_note"),
        Field("created_by"),
        Field("created_date", TIME),
        Field("expiry_date", DATE),
        _segment_type(),
    )),
    Segment("user_statistic", user_statistics, count_as="statistics", fields=(
        Field("statistic_category", CODE, code_table="statistic-category"),
        Field("category_type", CODE, code_table="category-type"),
        Field("statistic_note"),
        _segment_type(),
    )),
    Segment("proxy_for_user", user_proxies, count_as="proxies", fields=(
        Field("primary_id", column="proxy_for_primary_id"),
    )),
    Segment("attachment", user_attachments, count_as="attachments", fields=(
        Field("file_name"),
        Field("type"),
        Field("notes"),
        Field("content_base64", BASE64, column="content"),
    )),
    Segment("item_loan", loans, count_as="loans", unique=("loan_id",), fields=(
        Field("loan_id"),
        Field("item_barcode"),
        Field("title"),
        Field("loan_date", TIME),
        Field("due_date", TIME),
        Field("return_date", TIME),
        Field("loan_status", CHOICE, choices=("ACTIVE", "COMPLETE")),
        Field("process_status"),
        Field("library", CODE, code_table="library"),
    )),
    Segment("user_request", requests, count_as="requests", unique=("request_id",), fields=(
        Field("request_id"),
        Field("request_type"),
        Field("request_status", CHOICE, choices=("NOT_STARTED", "IN_PROCESS", "ON_HOLD_SHELF", "HISTORY")),
        Field("title"),
        Field("request_date", DATE),
        Field("pickup_location_library"),
    )),
    Segment("fee", fees, count_as="fees", unique=("id",), children=(TRANSACTION,), fields=(
        Field("id", column="fee_id"),
        Field("type", CODE, column="fee_type", code_table="fee-type"),
        Field("status", CODE, code_table="fee-status", choices=("ACTIVE", "CLOSED", "INDISPUTE")),
        Field("balance", MONEY, column="balance_minor"),
        Field("original_amount", MONEY, column="original_amount_minor"),
        Field("creation_time", TIME),
        Field("comment"),
        Field("owner", CODE, code_table="library"),
        Field("barcode", REF),
        Field("title"),
    )),
)

CONTACT_INFO = "contact_info"


def all_segments() -> list[Segment]:
    """Every segment of the format, the top-level ones first, then their children (a fee's transactions)."""
    out, stack = [], list(SEGMENTS)
    while stack:
        seg = stack.pop(0)
        out.append(seg)
        stack += seg.children
    return out


_SEGMENT_BY_NAME = {s.name: s for s in all_segments()}


def segment_named(name: str) -> Segment:
    """A segment of the format, children (a fee's transactions) included, by its name."""
    return _SEGMENT_BY_NAME[name]


def all_fields() -> list[tuple[Table, Field]]:
    """Every (table, field) of the format, for checks that must cover all of them."""
    return [(users, f) for f in USER_FIELDS] + [(s.table, f) for s in all_segments() for f in s.fields]


def code_tables_used() -> set[str]:
    return {f.code_table for _, f in all_fields() if f.code_table}


# ------------------------------------------------------------------ validation (JSON -> columns)

EXTRA = "extra"          # the column beside the typed ones in every table of the format
TYPED = "@typed"         # key in `extra`: typed fields kept in the exact form they were loaded in
CREDIT = "CREDIT"        # the fee type whose amounts are negative


class Bad(ValueError):
    """A field's value is refused; the message says why (the caller adds record and field)."""


class AsLoaded(Exception):
    """The value is valid and `column` is what the column stores, but the column cannot give back
    the value as it was: keep the original form in extra[@typed] too."""

    def __init__(self, column: Any):
        self.column = column


def _valid_utf8(value: str) -> bool:
    # json.loads turns "\ud800" escapes into lone surrogates, which no database can store.
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(max_length: int | None) -> Callable[[Any, dict], str]:
    def check(value: Any, found: dict) -> str:
        if value.__class__ is not str and not isinstance(value, str):
            raise Bad(f"must be a string, got {type(value).__name__}")
        if max_length is not None and len(value) > max_length:
            raise Bad(f"is {len(value)} characters long; at most {max_length} fit")
        if "\x00" in value or not _valid_utf8(value):
            raise Bad("is not valid UTF-8 text")
        return value

    check.max_length = max_length
    return check


def _bool(value: Any, found: dict) -> bool:
    if value is True or value is False:
        return value
    if value == "true" or value == "false":  # the XML form
        return value == "true"
    raise Bad(f"must be true or false, got {value!r}")


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}Z?")


# Dates and times go to the database as the text SQLAlchemy stores on SQLite ("2026-01-31",
# "2026-01-31 12:00:00.000000"), which PostgreSQL reads as its date and timestamp too: made from the
# checked text, without a datetime object and a call of the bind processor per value (1.2 million
# values at 100,000 users).


def stored_time(value: dt.datetime) -> str:
    return (f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
            f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}")


def _date(value: Any, found: dict) -> str:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise Bad(f"must be a date YYYY-MM-DD (optionally with a trailing Z), got {value!r}")
    try:
        dt.date.fromisoformat(value[:10])
    except ValueError:
        raise Bad(f"is not a real date: {value!r}") from None
    return value[:10]


_EPOCH = dt.datetime(1970, 1, 1)
_TIME_HINT = "must be an ISO 8601 time such as 2026-01-31T12:00:00Z (or epoch milliseconds), got {!r}"


def _time(value: Any, found: dict) -> str:
    return stored_time(_datetime(value))


def _datetime(value: Any) -> dt.datetime:
    if isinstance(value, str) and value.isdigit() and len(value) >= 10:
        value = int(value)  # epoch milliseconds written as XML text
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return _EPOCH + dt.timedelta(milliseconds=value)
        except OverflowError:
            raise Bad(_TIME_HINT.format(value)) from None
    if not isinstance(value, str) or len(value) < 10:
        raise Bad(_TIME_HINT.format(value))
    text = value[:-1] if len(value) == 11 and value.endswith("Z") else value  # a bare Alma date
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise Bad(_TIME_HINT.format(value)) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return parsed


def _money(value: Any, found: dict) -> int:
    """The amount in minor units (cents)."""
    cls = value.__class__
    if cls is int:
        amount = Decimal(value)
    elif cls is Decimal or cls is str or cls is float:
        try:
            amount = Decimal(value.strip()) if cls is str else Decimal(str(value)) if cls is float else value
        except InvalidOperation:
            raise Bad(f"must be an amount such as 12.50, got {value!r}") from None
    else:
        raise Bad(f"must be an amount such as 12.50, got {value!r}")
    if not amount.is_finite():
        raise Bad(f"must be an amount such as 12.50, got {value!r}")
    if abs(amount) >= MAX_AMOUNT:
        raise Bad(f"is too large: {value}")
    minor = amount * 100
    if minor != minor.to_integral_value():
        raise Bad(f"has more than 2 decimal places: {value}")
    return int(minor)


def _note(found: dict, table: str, value: str, desc: Any) -> None:
    """A code met: `found` maps code table -> code -> its description in the table (None: the code
    itself). The load fills it with the tables' codes first; a new code takes the first desc it comes
    with. The export's desc is always the code table's (the administrator's word for the code)."""
    known = found.get(table)
    if known is None:
        known = found[table] = {}
    if value not in known or (not known[value] and desc):
        known[value] = desc or None


def _code(max_length: int, choices: tuple[str, ...], required: bool, table: str | None):
    limit = min(max_length, CODE_MAX_LENGTH)

    def check(value: Any, found: dict) -> str | None:
        original = value
        desc = None
        if value.__class__ is dict:
            desc = value.get("desc")
            value = value.get("value")
            if desc is not None and (not isinstance(desc, str) or len(desc) > 255 or not _valid_utf8(desc)):
                raise Bad(f"desc must be text of at most 255 characters, got {desc!r}")
        if value is None or value == "":
            if required:
                raise Bad('needs a value, as {"value": ..., "desc": ...}')
            if original.__class__ is dict:
                raise AsLoaded(None)  # {"value": null, "desc": null} stays so
            return None
        if value.__class__ is not str:
            raise Bad(f'must be a code, as {{"value": ..., "desc": ...}} or a string, got {value!r}')
        if len(value) > limit:
            raise Bad(f"code {value!r} is longer than {limit} characters")
        if "\x00" in value or not _valid_utf8(value):
            raise Bad("is not valid UTF-8 text")
        if choices and value not in choices:
            raise Bad(f"unknown value {value!r}; valid values: {', '.join(choices)}")
        if original.__class__ is dict:
            if len(original) > (2 if "desc" in original else 1):
                raise AsLoaded(value)  # more than value and desc
        if table is not None:
            _note(found, table, value, desc)
        return value

    check.max_length, check.table, check.choices = limit, table, choices
    return check


def _codes(max_length: int | None, table: str):
    one = _code(CODE_MAX_LENGTH, (), True, table)

    def check(value: Any, found: dict) -> str | None:
        if value.__class__ is dict:  # Alma sends a lone type as an object now and then
            value = [value]
        if value.__class__ is not list:
            raise Bad(f'must be a list of codes [{{"value": ..., "desc": ...}}], got {value!r}')
        keep = False
        codes: list[str] = []
        for item in value:
            try:
                code = one(item, found)
            except AsLoaded as kept:
                code, keep = kept.column, True
            if "," in code:
                raise Bad(f"code {code!r} may not contain a comma")
            codes.append(code)
        joined = ",".join(codes) if codes else None
        if joined is not None and max_length is not None and len(joined) > max_length:
            raise Bad(f"too many codes: together they are longer than {max_length} characters")
        if keep:
            raise AsLoaded(joined)
        return joined

    return check


def _known_codes(items: list, known: dict | None, max_length: int | None) -> str | None:
    """The fast path of a CODES field (_compile): a list of plain {"value", "desc"} objects whose codes
    the table already has, as the column stores it; None when anything needs the full check."""
    if known is None or not items:
        return None
    codes = []
    for item in items:
        if item.__class__ is not dict or len(item) > 2 or (len(item) == 2 and "desc" not in item):
            return None
        code, desc = item.get("value"), item.get("desc")
        if (code.__class__ is not str or not code or len(code) > CODE_MAX_LENGTH or not code.isascii()
                or "\x00" in code or "," in code or code not in known):
            return None
        if desc is not None and (desc.__class__ is not str or len(desc) > 255 or not desc.isascii() or not known[code]):
            return None
        codes.append(code)
    joined = ",".join(codes)
    if max_length is not None and len(joined) > max_length:
        return None
    return joined


def _choice(choices: tuple[str, ...]):
    def check(value: Any, found: dict) -> str:
        if value not in choices:
            raise Bad(f"unknown value {value!r}; valid values: {', '.join(choices)}")
        return value

    check.choices = choices
    return check


def _base64(value: Any, found: dict) -> bytes:
    if not isinstance(value, str):
        raise Bad(f"must be base64 text, got {type(value).__name__}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Bad("is not valid base64") from None


def _ref(max_length: int | None):
    text = _text(max_length)

    def check(value: Any, found: dict) -> str | None:
        if value.__class__ is dict:
            inner = value.get("value")
            if inner is not None and not isinstance(inner, str):
                raise Bad(f'must be a string or {{"value": ..., "link": ...}}, got {value!r}')
            raise AsLoaded(None if inner is None else text(inner, found))
        return text(value, found)

    return check


def _is_required(f: Field, column: Column) -> bool:
    if f.required is not None:
        return f.required
    return not column.nullable and column.server_default is None and f.default is None


def _checker(f: Field, column: Column, required: bool):
    length = getattr(column.type, "length", None)
    if f.kind == TEXT:
        return _text(length)
    if f.kind == CODE:
        return _code(length or CODE_MAX_LENGTH, f.choices, required, f.code_table)
    if f.kind == CODES:
        return _codes(length, f.code_table)
    if f.kind == CHOICE:
        return _choice(f.choices)
    if f.kind == REF:
        return _ref(length)
    return {BOOL: _bool, DATE: _date, TIME: _time, MONEY: _money, BASE64: _base64}[f.kind]


class Plan(NamedTuple):
    """How one kind of object (a user, an address, a fee, ...) becomes a row."""

    steps: tuple            # (Field, check, required) per field
    known: frozenset        # the JSON keys the plan types (fields and lists)
    contact: bool = False   # the user: contact_info's lists are typed too


def _plan(table: Table, fields: tuple[Field, ...], lists: tuple[str, ...], contact: bool = False) -> Plan:
    steps = []
    for f in fields:
        column = table.c[f.column_name]
        required = _is_required(f, column)
        steps.append((f, _checker(f, column, required), required))
    return Plan(tuple(steps), frozenset([f.name for f in fields] + list(lists)), contact)


USER_PLAN = _plan(users, USER_FIELDS, tuple(s.name for s in SEGMENTS if s.under is None) + (CONTACT_INFO,),
                  contact=True)
CONTACT_KNOWN = frozenset(s.name for s in SEGMENTS if s.under == CONTACT_INFO)
PLANS: dict[str, Plan] = {}


def plan_for(segment: Segment) -> Plan:
    plan = PLANS.get(segment.name)
    if plan is None:
        plan = PLANS[segment.name] = _plan(segment.table, segment.fields, tuple(c.name for c in segment.children))
    return plan


def _dump_extra(extra: dict) -> str:
    # A number outside the spec is kept as a number, in one form whichever reader read it.
    return jsonio.dumps(jsonio.kept_numbers(extra))


def _compile(plan_steps: tuple, name: str) -> Callable:
    """The field loop of to_row as straight-line Python, one block per field with an inline fast path
    for the common well-formed value (a short ASCII string, a bool, a UTC time, a plain code): at
    100,000 users a generic loop over the steps cost more than all the rest of the load. The slow path
    is the field's check function, which also words every refusal."""
    env = _compile_env()
    lines = [f"def fields_{name}(obj, found, problems, where):"] + _field_lines(plan_steps, env) + [
        "    return row, typed"]
    exec(compile("\n".join(lines), f"<alma fields {name}>", "exec"), env)  # noqa: S102 - generated from the spec
    return env[f"fields_{name}"]


def _compile_env() -> dict[str, Any]:
    return {"Bad": Bad, "AsLoaded": AsLoaded, "_fromiso": dt.datetime.fromisoformat, "_note": _note,
            "_Decimal": Decimal, "_fromisodate": dt.date.fromisoformat, "_known_codes": _known_codes}


# The common well-formed date and time, as generated code tests and stores them (here and in typed.py):
# a text `v` of the shape, whose value `_fromisodate` / `_fromiso` of the `CHECKED` part accepts, is
# stored as `STORED`. Anything else goes to the field's check function.
DATE_SHAPE = "(len({v}) == 10 or len({v}) == 11 and {v}[10] == 'Z') and {v}[4] == '-' and {v}[7] == '-'"
DATE_CHECKED = DATE_STORED = "{v}[:10]"
TIME_SHAPE = ("len({v}) == 20 and {v}[19] == 'Z' and {v}[10] == 'T' and {v}[13] == ':' and {v}[16] == ':' "
              "and {v}[4] == '-' and {v}[7] == '-'")
TIME_CHECKED = "{v}[:19]"
TIME_STORED = "{v}[:10] + ' ' + {v}[11:19] + '.000000'"


def _field_lines(plan_steps: tuple, env: dict[str, Any], locals_: bool = False) -> list[str]:
    """The body that makes `row` (and `typed`) from `obj`, problems worded at `where` + field name.
    With `locals_` each column's value goes to a local variable `r<n>` instead (the caller makes the
    row's tuple of them)."""
    lines = ["    get = obj.get", "    typed = None"] + ([] if locals_ else ["    row = {}"])

    def slow(n: int, fn: str, col: str, pad: str) -> list[str]:
        return [f"{pad}try:",
                f"{pad}    row[{col}] = C{n}(_Decimal(repr(v)) if v.__class__ is float else v, found)",
                f"{pad}except AsLoaded as kept:",
                f"{pad}    row[{col}] = kept.column",
                f"{pad}    typed = typed or {{}}",
                f"{pad}    typed[{fn}] = v",
                f"{pad}except Bad as bad:",
                f"{pad}    row[{col}] = None  # never written: the record is refused",
                f"{pad}    problems.append((where + {fn}, str(bad)))"]

    for n, (f, check, required) in enumerate(plan_steps):
        field_name, column, kind, default = f.name, f.column_name, f.kind, f.default
        env[f"C{n}"], env[f"D{n}"] = check, default
        fn, col = repr(field_name), repr(column)
        lines.append(f"    v = get({fn})")
        lines.append("    if v is None:")
        if required:
            lines.append(f"        problems.append((where + {fn}, 'is required'))")
        lines.append(f"        row[{col}] = D{n}")
        if default is not None:
            lines.append(f"        if {fn} in obj:")
            lines.append("            typed = typed or {}")
            lines.append(f"            typed[{fn}] = None")
        max_length = getattr(check, "max_length", None)
        if kind == TEXT:
            bound = f" and len(v) <= {max_length}" if max_length is not None else ""
            lines.append(f"    elif v.__class__ is str{bound} and v.isascii() and '\\x00' not in v:")
            lines.append(f"        row[{col}] = v")
        elif kind == BOOL:
            lines.append("    elif v is True or v is False:")
            lines.append(f"        row[{col}] = v")
        elif kind == CHOICE:
            env[f"K{n}"] = frozenset(check.choices)
            lines.append(f"    elif v.__class__ is str and v in K{n}:")
            lines.append(f"        row[{col}] = v")
        elif kind == DATE:
            lines.append(f"    elif v.__class__ is str and {DATE_SHAPE.format(v='v')}:")
            lines.append("        try:")
            lines.append(f"            _fromisodate({DATE_CHECKED.format(v='v')})")
            lines.append(f"            row[{col}] = {DATE_STORED.format(v='v')}")
            lines.append("        except ValueError:")
            lines += slow(n, fn, col, "            ")
        elif kind == TIME:
            lines.append(f"    elif v.__class__ is str and {TIME_SHAPE.format(v='v')}:")
            lines.append("        try:")
            lines.append(f"            _fromiso({TIME_CHECKED.format(v='v')})")
            lines.append(f"            row[{col}] = {TIME_STORED.format(v='v')}")
            lines.append("        except ValueError:")
            lines += slow(n, fn, col, "            ")
        elif kind == CODES:
            env[f"T{n}"] = f.code_table
            limit = max_length if max_length is not None else "None"
            lines.append(f"    elif v.__class__ is list and (c := _known_codes(v, found.get(T{n}), {limit})) is not None:")
            lines.append(f"        row[{col}] = c")
        elif kind == CODE and getattr(check, "table", None):
            env[f"T{n}"], env[f"K{n}"] = check.table, frozenset(check.choices)
            choice = f" and c in K{n}" if check.choices else ""
            lines.append("    elif v.__class__ is dict and len(v) <= 2 and (len(v) == 1 or 'desc' in v) "
                         "and (c := v.get('value')).__class__ is str and c "
                         f"and len(c) <= {check.max_length} and c.isascii() and '\\x00' not in c{choice} "
                         "and ((d := v.get('desc')) is None or d.__class__ is str and len(d) <= 255 and d.isascii()):")
            lines.append(f"        known = found.get(T{n})")
            lines.append("        if known is None or c not in known or (d and not known[c]):")
            lines += slow(n, fn, col, "            ")
            lines.append("        else:")
            lines.append(f"            row[{col}] = c")
        lines.append("    else:")
        lines += slow(n, fn, col, "        ")
    if locals_:
        lines = [_to_local(line, plan_steps) for line in lines]
    return lines


def _to_local(line: str, plan_steps: tuple) -> str:
    for n, (f, _, _) in enumerate(plan_steps):
        line = line.replace(f"row[{f.column_name!r}] =", f"r{n} =")
    return line


def item_columns(plan: Plan) -> tuple[str, ...]:
    """The columns of the rows `compile_items` makes, in the order of their values."""
    return tuple(f.column_name for f, _, _ in plan.steps) + (EXTRA,)


def compile_items(plan: Plan, name: str, unique_columns: tuple, unique_names: tuple,
                  repeated: Callable[[tuple, tuple, tuple, str], str]) -> Callable:
    """All the items of one list of a record (a user's loans, ...) in one call: the loop, the fields,
    `extra` (as to_row) and the key unique in the library, met again in the chunk (`met`: key ->
    (record, where), worded by `repeated`), as straight-line Python. At 100,000 users the calls
    per item (to_row, its fields function) cost a second of the checks. For a list without per-user
    keys or child lists (load does those item by item). Each row is a tuple of `item_columns(plan)`,
    as the driver takes it: a dict per row, read back into a tuple, cost as much again."""
    env = _compile_env()
    env["KNOWN"], env["_extra"], env["_repeated"], env["NAMES"] = plan.known, _extra_of, repeated, unique_names
    env["SEGMENT"] = name
    lines = [f"def items_{name}(items, path, found, problems, append_row, append_owner, owner, met, record):",
             "    for i, obj in enumerate(items):",
             "        if obj.__class__ is not dict:",
             "            problems.append((f'{path}[{i}]', 'must be a JSON object'))",
             "            continue"]
    # Where an item is, worded only for a problem: most items have none.
    lines += ["    " + line.replace("(where + ", "(f'{path}[{i}].' + ")
              for line in _field_lines(plan.steps, env, locals_=True)]
    columns = item_columns(plan)
    lines += [f"        if typed or len(obj) > {len(plan.known)} or not KNOWN.issuperset(obj):",
              "            x = _extra(obj, KNOWN, typed, problems, f'{path}[{i}].')",
              "        else:",
              "            x = None",
              "        row = (" + "".join(f"r{n}, " for n in range(len(columns) - 1)) + "x)"]
    if unique_columns:
        parts = " ".join(f"r{columns.index(column)} or ''," for column in unique_columns)
        lines += [f"        key = ({parts})",
                  "        first = met.get(key)",
                  "        if first is None:",
                  "            met[key] = (record, path, i)",
                  "        else:",
                  f"            problems.append((f'{{path}}[{{i}}].{unique_names[-1]}', _repeated(NAMES, key, first, SEGMENT)))"]
    lines += ["        append_row(row)", "        append_owner(owner)"]
    exec(compile("\n".join(lines), f"<alma items {name}>", "exec"), env)  # noqa: S102 - generated from the spec
    return env[f"items_{name}"]


_COMPILED: dict[int, Callable] = {}


def to_row(obj: dict, plan: Plan, found: dict, problems: list, where: str) -> dict:
    """A record (a dict) as a row of its table. Problems go to `problems` as (field path, message);
    codes met go to `found` (code table -> code -> desc). The row's `extra` is the JSON text of what
    the plan does not type, plus the exact forms kept under @typed; NULL when there is none."""
    fields = _COMPILED.get(id(plan))
    if fields is None:
        fields = _COMPILED[id(plan)] = _compile(plan.steps, f"p{len(_COMPILED)}")
    row, typed = fields(obj, found, problems, where)
    row[EXTRA] = _extra_of(obj, plan.known, typed, problems, where, plan.contact)
    return row


def _extra_of(obj: dict, known: frozenset, typed: dict | None, problems: list, where: str,
              contact: bool = False) -> str | None:
    """The `extra` column of a record: what the plan does not type (with contact_info's for a user),
    and the typed fields' exact forms under @typed, as JSON text; None when there is none."""
    extra = None
    if len(obj) > len(known) or not known.issuperset(obj):
        extra = {k: v for k, v in obj.items() if k not in known}
        if TYPED in extra:
            problems.append((f"{where}{TYPED}", "is a name this library keeps for itself; rename the field"))
    if contact:
        info = obj.get(CONTACT_INFO)
        if info.__class__ is dict and not CONTACT_KNOWN.issuperset(info):
            extra = extra or {}
            extra[CONTACT_INFO] = {k: v for k, v in info.items() if k not in CONTACT_KNOWN}
    if typed:
        extra = extra or {}
        extra[TYPED] = typed
    if not extra:
        return None
    try:
        return _dump_extra(extra)
    except (TypeError, ValueError) as exc:
        problems.append((where.rstrip(".") or "user", f"cannot be kept: {exc}"))
        return None


# ------------------------------------------------------------------ export (columns -> JSON)


def format_date(value: dt.date | None) -> str | None:
    return None if value is None else f"{value.isoformat()}Z"


def format_time(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds" if value.microsecond else "seconds") + "Z"


def _still_as_loaded(kind: str, column_value: Any, original: Any) -> bool:
    """Whether the column still holds what was loaded with `original`: if a job changed it since, the
    column's value is exported instead of the kept form."""
    if original is None:  # an explicit null where the column stores a default
        return not column_value
    if kind == CODE or kind == REF:
        inner = original.get("value") if isinstance(original, dict) else original
        return (inner or None) == (column_value or None)
    if kind == CODES:
        items = original if isinstance(original, list) else [original]
        values = [i.get("value") if isinstance(i, dict) else i for i in items]
        return ",".join(v or "" for v in values) == (column_value or "")
    return False


_load_extra = jsonio.loads


class ExportPlan(NamedTuple):
    """How rows of one table, read as tuples in a known column order, become JSON objects."""

    fields: tuple   # (json name, position in the row, kind, code table) per field
    extra: int      # the position of `extra`


def export_plan(fields: tuple[Field, ...], columns: list[str]) -> ExportPlan:
    position = {name: i for i, name in enumerate(columns)}
    return ExportPlan(tuple((f.name, position[f.column_name], f.kind, f.code_table) for f in fields),
                      position[EXTRA])


def _minor_text(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    minor = abs(minor)
    return f"{sign}{minor // 100}.{minor % 100:02d}"


# SQLite keeps dates and times as text in SQLAlchemy's storage format ("2026-01-31",
# "2026-01-31 12:00:00.000000"); export reads that text without its result processing (a datetime
# object per value cost a third of an export) and writes the format's form from it. Text in another
# form (written by hand) is read by SQLAlchemy's own SQLite processors.
_SQLITE_DATE = sqlite.DATE().result_processor(sqlite.dialect(), None)
_SQLITE_DATETIME = sqlite.DATETIME().result_processor(sqlite.dialect(), None)


def _stored_date(value: Any) -> str:
    return format_date(_SQLITE_DATE(value) if isinstance(value, str) else value)


def _stored_time(value: Any) -> str:
    return format_time(_SQLITE_DATETIME(value) if isinstance(value, str) else value)


def _compile_export(plan: ExportPlan, name: str) -> Callable:
    """to_json's field loop as straight-line Python (see _compile): one line per field, with an inline
    fast path for SQLite's stored text of dates and times."""
    env: dict[str, Any] = {"_time": _stored_time, "_date": _stored_date, "_money": _minor_text,
                           "_b64": base64.b64encode}
    lines = [f"def json_{name}(row, descriptions):", "    out = {}"]
    for field_name, position, kind, table in plan.fields:
        fn = repr(field_name)
        lines.append(f"    v = row[{position}]")
        if kind in (TEXT, CHOICE, REF):
            lines.append(f"    out[{fn}] = v")
        elif kind == CODE:
            lines.append(f"    out[{fn}] = {{'value': v, 'desc': descriptions[{table!r}].get(v)}} if v else None")
        elif kind == CODES:
            lines.append(f"    d = descriptions[{table!r}]")
            lines.append(f"    out[{fn}] = [{{'value': c, 'desc': d.get(c)}} for c in v.split(',')] if v else []")
        elif kind == DATE:
            lines.append(f"    out[{fn}] = None if v is None else v + 'Z' if v.__class__ is str and len(v) == 10 "
                         f"else _date(v)")
        elif kind == TIME:
            lines.append("    if v is None:")
            lines.append(f"        out[{fn}] = None")
            lines.append("    elif v.__class__ is str and len(v) == 26 and v[10] == ' ':")
            lines.append(f"        out[{fn}] = v[:10] + 'T' + (v[11:19] if v.endswith('000000') else v[11:]) + 'Z'")
            lines.append("    else:")
            lines.append(f"        out[{fn}] = _time(v)")
        elif kind == MONEY:
            lines.append(f"    out[{fn}] = None if v is None else _money(v)")
        elif kind == BASE64:
            lines.append(f"    out[{fn}] = None if v is None else _b64(bytes(v)).decode('ascii')")
        elif kind == BOOL:
            lines.append(f"    out[{fn}] = None if v is None else bool(v)")
    lines.append("    return out")
    exec(compile("\n".join(lines), f"<alma export {name}>", "exec"), env)  # noqa: S102 - generated from the spec
    return env[f"json_{name}"]


_COMPILED_EXPORT: dict[ExportPlan, Callable] = {}


def to_json(row: tuple, plan: ExportPlan, descriptions: dict[str, dict[str, str]]) -> dict:
    """A row (a tuple in the plan's column order) as the JSON object of the format; code descriptions
    come from the code tables. What the row's `extra` holds is put back as it was loaded."""
    fields = _COMPILED_EXPORT.get(plan)
    if fields is None:
        fields = _COMPILED_EXPORT[plan] = _compile_export(plan, f"p{len(_COMPILED_EXPORT)}")
    out = fields(row, descriptions)
    extra = row[plan.extra]
    if extra:
        kept = _load_extra(extra)
        typed = kept.pop(TYPED, None)
        if typed:
            kinds = {name: (position, kind) for name, position, kind, _ in plan.fields}
            for name, original in typed.items():
                position, kind = kinds.get(name, (None, None))
                if position is not None and _still_as_loaded(kind, row[position], original):
                    out[name] = original
        contact = kept.pop(CONTACT_INFO, None)
        out.update(kept)
        if contact:
            out[CONTACT_INFO] = contact  # merged into the exported contact_info by the caller
    return out


def _check_spec() -> None:
    for table, f in all_fields():
        if f.column_name not in table.c:
            raise AssertionError(f"{table.name} has no column {f.column_name!r} for Alma field {f.name!r}")
        if f.code_table and f.code_table not in CODE_TABLES:
            raise AssertionError(f"Alma field {f.name!r} names unknown code table {f.code_table!r}")
    for table in {t for t, _ in all_fields()}:
        if EXTRA not in table.c:
            raise AssertionError(f"{table.name} has no column {EXTRA!r} for the fields outside the spec")


_check_spec()
