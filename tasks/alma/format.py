"""The Alma user format: which JSON field is which column, of which kind, with which code table.

This is the one description of the format. Load (`tasks.alma.load`) validates files with the pydantic
models built from it and turns them into rows; export (`tasks.alma.export`) turns rows back into JSON
with the same field list. A field added here therefore loads and exports without touching either.

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
from functools import cached_property
from typing import Annotated, Any, Callable, NamedTuple, Optional

from pydantic import BaseModel, ConfigDict, PlainValidator, create_model
from pydantic_core import PydanticCustomError
from sqlalchemy import Column, Table

from tasks.library.codes import CODE_TABLES
from tasks.library.money import CENT, format_amount, to_minor
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
TIME = "time"          # ISO 8601; stored as naive UTC
MONEY = "money"        # JSON number or decimal string -> Decimal (2 places, not negative); stored in cents
CODE = "code"          # {"value", "desc"}: value in a code table
CODES = "codes"        # [{"value", "desc"}, ...]: stored as comma-separated codes
CHOICE = "choice"      # a plain string from a fixed list (loan_status, segment_type, ...)
BASE64 = "base64"      # bytes, written as base64 text

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

    @cached_property
    def model(self) -> type[BaseModel]:
        return _build_model(self.name, self.table, self.fields, self.children)


def _segment_type() -> Field:
    return Field("segment_type", CHOICE, choices=SEGMENT_TYPES)


USER_FIELDS: tuple[Field, ...] = (
    Field("primary_id", required=True),
    Field("first_name"),
    Field("middle_name"),
    Field("last_name"),
    Field("user_group", CODE, code_table="user-group"),
    Field("record_type", CODE, code_table="record-type", choices=("PUBLIC", "STAFF", "CONTACT")),
    Field("account_type", CODE, code_table="account-type", choices=("INTERNAL", "EXTERNAL"), default="EXTERNAL"),
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
        Field("barcode"),
        Field("title"),
    )),
)

CONTACT_INFO = "contact_info"


def all_fields() -> list[tuple[Table, Field]]:
    """Every (table, field) of the format, for checks that must cover all of them."""
    found = [(users, f) for f in USER_FIELDS]
    stack = list(SEGMENTS)
    while stack:
        seg = stack.pop()
        found += [(seg.table, f) for f in seg.fields]
        stack += seg.children
    return found


def code_tables_used() -> set[str]:
    return {f.code_table for _, f in all_fields() if f.code_table}


# ------------------------------------------------------------------ validation (JSON -> Python)


def _fail(message: str, **context: Any):
    # Formatted here, not by pydantic: its templates know neither {x!r} nor braces inside values.
    raise PydanticCustomError("alma", "{message}", {"message": message.format(**context)})


def _valid_utf8(value: str) -> bool:
    # json.loads turns "\ud800" escapes into lone surrogates, which no database can store.
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(max_length: int | None) -> Callable[[Any], str]:
    def validate(value: Any) -> str:
        if not isinstance(value, str):
            _fail("must be a string, got {got}", got=type(value).__name__)
        if max_length is not None and len(value) > max_length:
            _fail("is {n} characters long; at most {max} fit", n=len(value), max=max_length)
        if "\x00" in value or not _valid_utf8(value):
            _fail("is not valid UTF-8 text")
        return value

    return validate


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        _fail("must be true or false, got {got!r}", got=value)
    return value


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}Z?")


def _date(value: Any) -> dt.date:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        _fail("must be a date YYYY-MM-DD (optionally with a trailing Z), got {got!r}", got=value)
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        _fail("is not a real date: {got!r}", got=value)


def _time(value: Any) -> dt.datetime:
    if not isinstance(value, str) or len(value) < 10:
        _fail("must be an ISO 8601 time such as 2026-01-31T12:00:00Z, got {got!r}", got=value)
    text = value[:-1] if len(value) == 11 and value.endswith("Z") else value  # a bare Alma date
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        _fail("must be an ISO 8601 time such as 2026-01-31T12:00:00Z, got {got!r}", got=value)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return parsed


def _money(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str, float)):
        _fail("must be an amount such as 12.50, got {got!r}", got=value)
    try:
        amount = Decimal(str(value).strip()) if isinstance(value, (str, float)) else Decimal(value)
    except InvalidOperation:
        _fail("must be an amount such as 12.50, got {got!r}", got=value)
    if not amount.is_finite():
        _fail("must be an amount such as 12.50, got {got!r}", got=value)
    if amount < 0:
        _fail("may not be negative, got {got}", got=str(value))
    if amount >= MAX_AMOUNT:
        _fail("is too large: {got}", got=str(value))
    if amount != amount.quantize(CENT):
        _fail("has more than 2 decimal places: {got}", got=str(value))
    return amount.quantize(CENT)


def _code(max_length: int, choices: tuple[str, ...], required: bool) -> Callable[[Any], CodeRef | None]:
    limit = min(max_length, CODE_MAX_LENGTH)

    def validate(value: Any) -> CodeRef | None:
        desc = None
        if isinstance(value, dict):
            desc = value.get("desc")
            value = value.get("value")
            if desc is not None and (not isinstance(desc, str) or len(desc) > 255 or not _valid_utf8(desc)):
                _fail("desc must be text of at most 255 characters, got {got!r}", got=desc)
        if value is None or value == "":
            if required:
                _fail('needs a value, as {{"value": ..., "desc": ...}}')
            return None
        if not isinstance(value, str):
            _fail('must be a code, as {{"value": ..., "desc": ...}} or a string, got {got!r}', got=value)
        if len(value) > limit:
            _fail("code {got!r} is longer than {max} characters", got=value, max=limit)
        if not _valid_utf8(value) or "\x00" in value:
            _fail("is not valid UTF-8 text")
        if choices and value not in choices:
            _fail("unknown value {got!r}; valid values: {valid}", got=value, valid=", ".join(choices))
        return CodeRef(value, desc)

    return validate


def _codes(max_length: int | None) -> Callable[[Any], tuple[CodeRef, ...]]:
    one = _code(CODE_MAX_LENGTH, (), required=True)

    def validate(value: Any) -> tuple[CodeRef, ...]:
        if value is None:
            return ()
        if isinstance(value, dict):  # Alma sends a lone type as an object now and then
            value = [value]
        if not isinstance(value, list):
            _fail('must be a list of codes [{{"value": ..., "desc": ...}}], got {got!r}', got=value)
        refs = tuple(one(item) for item in value)
        for ref in refs:
            if "," in ref.value:
                _fail("code {got!r} may not contain a comma", got=ref.value)
        if max_length is not None and len(",".join(r.value for r in refs)) > max_length:
            _fail("too many codes: together they are longer than {max} characters", max=max_length)
        return refs

    return validate


def _choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def validate(value: Any) -> str:
        if value not in choices:
            _fail("unknown value {got!r}; valid values: {valid}", got=value, valid=", ".join(choices))
        return value

    return validate


def _base64(value: Any) -> bytes:
    if not isinstance(value, str):
        _fail("must be base64 text, got {got}", got=type(value).__name__)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        _fail("is not valid base64")


def _is_required(f: Field, column: Column) -> bool:
    if f.required is not None:
        return f.required
    return not column.nullable and column.server_default is None and f.default is None


def _validator(f: Field, column: Column, required: bool) -> Callable[[Any], Any]:
    length = getattr(column.type, "length", None)
    if f.kind == TEXT:
        return _text(length)
    if f.kind == CODE:
        return _code(length or CODE_MAX_LENGTH, f.choices, required)
    if f.kind == CODES:
        return _codes(length)
    if f.kind == CHOICE:
        return _choice(f.choices)
    return {BOOL: _bool, DATE: _date, TIME: _time, MONEY: _money, BASE64: _base64}[f.kind]


class _AlmaObject(BaseModel):
    # Real Alma users carry many more fields (links, PIN numbers, ...): they are not ours to refuse.
    model_config = ConfigDict(extra="ignore", frozen=True)


def _build_model(name: str, table: Table, fields: tuple[Field, ...], children: tuple[Segment, ...],
                 extra: dict[str, Any] | None = None) -> type[BaseModel]:
    definitions: dict[str, Any] = {}
    for f in fields:
        column = table.c[f.column_name]
        required = _is_required(f, column)
        check = _validator(f, column, required)
        if required:
            definitions[f.name] = (Annotated[Any, PlainValidator(check)], ...)
        else:
            def optional(value: Any, _check=check) -> Any:
                return None if value is None else _check(value)
            definitions[f.name] = (Annotated[Any, PlainValidator(optional)], None)
    for child in children:
        definitions[child.name] = (Optional[list[child.model]], None)
    definitions.update(extra or {})
    return create_model(f"Alma_{name}", __base__=_AlmaObject, **definitions)


def _build_user_model() -> type[BaseModel]:
    contact = [s for s in SEGMENTS if s.under == CONTACT_INFO]
    contact_model = create_model(
        "Alma_contact_info", __base__=_AlmaObject,
        **{s.name: (Optional[list[s.model]], None) for s in contact},
    )
    top = tuple(s for s in SEGMENTS if s.under is None)
    return _build_model("user", users, USER_FIELDS, top, extra={CONTACT_INFO: (Optional[contact_model], None)})


UserModel: type[BaseModel] = _build_user_model()


def items_of(obj: BaseModel, segment: Segment) -> list[BaseModel]:
    """The items of `segment` in a validated user (or fee); a missing or null list is empty."""
    holder = getattr(obj, segment.under) if segment.under else obj
    if holder is None:
        return []
    return getattr(holder, segment.name) or []


def to_row(obj: BaseModel, fields: tuple[Field, ...], found_codes: dict[str, dict[str, str | None]]) -> dict:
    """A validated object as a row of its table; codes met are collected into `found_codes`."""
    row = {}
    for f in fields:
        value = getattr(obj, f.name)
        if value is None:
            row[f.column_name] = f.default
            continue
        kind = f.kind
        if kind == CODE:
            _note_code(found_codes, f.code_table, value)
            value = value.value
        elif kind == CODES:
            for ref in value:
                _note_code(found_codes, f.code_table, ref)
            value = ",".join(r.value for r in value) if value else f.default
        elif kind == MONEY:
            value = to_minor(value)
        row[f.column_name] = value
    return row


def _note_code(found: dict[str, dict[str, str | None]], table: str, ref: CodeRef) -> None:
    known = found.get(table)
    if known is None:
        known = found[table] = {}
    if not known.get(ref.value):
        known[ref.value] = ref.desc or None


# ------------------------------------------------------------------ export (Python -> JSON)


def format_date(value: dt.date | None) -> str | None:
    return None if value is None else f"{value.isoformat()}Z"


def format_time(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds" if value.microsecond else "seconds") + "Z"


def format_money(minor: int | None) -> str | None:
    return None if minor is None else format_amount(minor)


def to_json(row: Any, fields: tuple[Field, ...], descriptions: dict[str, dict[str, str]]) -> dict:
    """A row as the JSON object of the format; code descriptions come from the code tables."""
    out: dict[str, Any] = {}
    for f in fields:
        value = row[f.column_name]
        if f.kind == CODE:
            value = None if not value else {"value": value, "desc": descriptions.get(f.code_table, {}).get(value)}
        elif f.kind == CODES:
            table = descriptions.get(f.code_table, {})
            value = [{"value": v, "desc": table.get(v)} for v in value.split(",")] if value else []
        elif f.kind == DATE:
            value = format_date(value)
        elif f.kind == TIME:
            value = format_time(value)
        elif f.kind == MONEY:
            value = format_money(value)
        elif f.kind == BASE64:
            value = None if value is None else base64.b64encode(bytes(value)).decode("ascii")
        elif f.kind == BOOL:
            value = bool(value)
        out[f.name] = value
    return out


def _check_spec() -> None:
    for table, f in all_fields():
        if f.column_name not in table.c:
            raise AssertionError(f"{table.name} has no column {f.column_name!r} for Alma field {f.name!r}")
        if f.code_table and f.code_table not in CODE_TABLES:
            raise AssertionError(f"Alma field {f.name!r} names unknown code table {f.code_table!r}")


_check_spec()
