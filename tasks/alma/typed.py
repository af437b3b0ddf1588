"""The common user record, decoded and checked in C (msgspec), beside the field-by-field checks of
format.py, which stay the one authority.

At 100,000 users the checks cost more than all the database's work: a JSON parse into dicts, then
every value looked at again in Python. Most records of a library are of one plain shape (the spec's
fields only, codes the tables know, times in UTC); msgspec decodes a line of that shape straight into
typed objects, refusing anything else, and what Python still does here is what msgspec cannot know:
the code tables, dates that exist, amounts in cents, the keys met. A record that does not fit, in any
way, is given to format.py's checks as it is today (`None` from `decode`, `Slow` from a shape's `row`):
they word every refusal and keep every unusual form, so this path only ever takes a record they
would take too, and makes the same rows of it (tests/test_alma_typed.py holds the two to each other).
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Callable, Literal, Optional

import msgspec

from tasks.alma.format import (
    BOOL, CHOICE, CODE, CODE_MAX_LENGTH, CODES, CONTACT_INFO, DATE, MONEY, REF, SEGMENTS, TEXT, TIME,
    USER_PLAN, Bad, Plan, Segment, _base64, _money, checked_item_by_item, item_columns, plan_for, unique_columns,
    DATE_CHECKED, DATE_SHAPE, DATE_STORED, TIME_CHECKED, TIME_SHAPE, TIME_STORED,
)


class Slow(Exception):
    """The record is not of the plain shape: format.py's checks take it."""


class _Code(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    value: str
    desc: Optional[str] = None


def _annotation(f, check, required: bool) -> tuple[Any, Any]:
    """The msgspec type of a field and its default (msgspec.NODEFAULT: it must be there)."""
    length = getattr(check, "max_length", None)
    if f.kind in (TEXT, REF):
        kind: Any = Annotated[str, msgspec.Meta(max_length=length)] if length else str
    elif f.kind == CODE:
        kind = _Code
    elif f.kind == CODES:
        kind = list[_Code]
    elif f.kind == CHOICE:
        kind = Literal[tuple(check.choices)]
    elif f.kind == BOOL:
        kind = bool
    elif f.kind == MONEY:
        kind = Decimal
    else:  # DATE, TIME, BASE64: text, checked here
        kind = str
    if required:
        return kind, msgspec.NODEFAULT
    if f.default is not None:
        # Null where the column has a default is kept as loaded by format.py (@typed): not plain.
        return kind, (f.default if f.kind == BOOL else None)
    return Optional[kind], None


def _struct(name: str, plan: Plan, lists: list[tuple[str, Any]]) -> type:
    # kw_only: the fields keep the plan's order (the row's), required or not.
    fields = [(f.name, *_annotation(f, check, required)) for f, check, required in plan.steps]
    fields += [(list_name, kind, None) for list_name, kind in lists]
    return msgspec.defstruct(name, [(n, t) if d is msgspec.NODEFAULT else (n, t, d) for n, t, d in fields],
                             forbid_unknown_fields=True, kw_only=True, gc=False)


class _Shape:
    """One segment (or the user): its struct, how its values become the row's, and its children."""

    def __init__(self, segment: Segment | None, plan: Plan, children: list["_Shape"], lists=()):
        self.segment, self.plan, self.children = segment, plan, children
        self.name = segment.name if segment else "user"
        self.columns = item_columns(plan)
        self.unique = tuple(self.columns.index(c) for c in unique_columns(segment)) if segment else ()
        self.per_user = tuple(self.columns.index(c) for c in unique_columns(segment, True)) if segment else ()
        self.item_by_item = segment is not None and checked_item_by_item(segment)  # how its keys' places read
        lists = list(lists) + [(c.name, Optional[list[c.struct]]) for c in children]
        self.struct = _struct(f"Typed_{self.name}", plan, lists)
        self.row = _compile_row(self)


def _shape(segment: Segment) -> _Shape:
    return _Shape(segment, plan_for(segment), [_shape(c) for c in segment.children])


def decode(raw: bytes) -> Any:
    """The record of a JSON line as typed objects, or None when it is not of the plain shape (or not
    JSON at all: format.py's reading words that)."""
    # \u0000 is the one text no check of msgspec refuses that format.py does. Most lines hold no
    # backslash at all: looking for one byte first is a third of the cost of looking for six.
    if b"\\" in raw and b"\\u0000" in raw:
        return None
    try:
        return _DECODER.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None


def _code_lines(var: str, table: str, limit: int, choices: tuple, env: dict, n: int) -> list[str]:
    """Lines that turn the code object in `var` into its value, or raise Slow."""
    env[f"T{n}"], env[f"K{n}"] = table, frozenset(choices)
    return [f"    k = found.get(T{n})",
            f"    c, d = {var}.value, {var}.desc",
            f"    if not c or len(c) > {limit} or k is None or c not in k or (d and not k[c]) "
            f"or (d is not None and len(d) > 255){f' or c not in K{n}' if choices else ''}:",
            "        raise Slow",
            f"    {var} = c"]


def _compile_row(shape: "_Shape") -> Callable:
    """A shape's `row`: the row's tuple of a typed object, each value as format.py's checks make it
    (extra: none, the shape has no more), else Slow; straight-line Python, for a call per value cost
    more than msgspec's decoding of the whole line."""
    env: dict[str, Any] = {"Slow": Slow, "_fromiso": dt.datetime.fromisoformat, "_fromisodate": dt.date.fromisoformat,
                           "_money": _money, "_base64": _base64, "Bad": Bad}
    lines = [f"def row_{shape.name}(o, found):"]
    names = []
    for n, (f, check, required) in enumerate(shape.plan.steps):
        var = f"v{n}"
        names.append(var)
        lines.append(f"    {var} = o.{f.name}")
        if f.kind in (TEXT, REF, CHOICE, BOOL):
            continue
        env[f"D{n}"] = f.default
        lines.append(f"    if {var} is None:")
        lines.append("        raise Slow" if required else f"        {var} = D{n}")
        lines.append("    else:")
        body: list[str] = []
        if f.kind in (TIME, DATE):
            shape_, checked, stored, parse = ((TIME_SHAPE, TIME_CHECKED, TIME_STORED, "_fromiso") if f.kind == TIME
                                              else (DATE_SHAPE, DATE_CHECKED, DATE_STORED, "_fromisodate"))
            body = [f"    if not ({shape_.format(v=var)}):",
                    "        raise Slow",
                    "    try:",
                    f"        {parse}({checked.format(v=var)})",
                    "    except ValueError:",
                    "        raise Slow from None",
                    f"    {var} = {stored.format(v=var)}"]
        elif f.kind == CODE:
            body = _code_lines(var, check.table, check.max_length, check.choices, env, n)
        elif f.kind == CODES:
            length = getattr(check, "max_length", None)
            body = [f"    if not {var}:",
                    f"        {var} = None",
                    "    else:",
                    "        codes = []",
                    f"        for item in {var}:"]
            body += ["        " + line for line in _code_lines("item", f.code_table, CODE_MAX_LENGTH, (), env, n)]
            body += ["            if ',' in item:",
                     "                raise Slow",
                     "            codes.append(item)",
                     f"        {var} = ','.join(codes)"]
            if length is not None:
                body += [f"        if len({var}) > {length}:", "            raise Slow"]
        else:  # MONEY, BASE64
            fn = "_money" if f.kind == MONEY else "_base64"
            body = ["    try:", f"        {var} = {fn}({var}, found)", "    except Bad:", "        raise Slow from None"]
        lines += ["    " + line for line in body]
    lines.append(f"    return ({', '.join(names)}, None)")
    exec(compile("\n".join(lines), f"<alma typed {shape.name}>", "exec"), env)  # noqa: S102 - from the spec
    return env[f"row_{shape.name}"]


TOP = [_shape(s) for s in SEGMENTS if s.under is None]          # a user's lists, in the spec's order
CONTACT = [_shape(s) for s in SEGMENTS if s.under == CONTACT_INFO]
_Contact = msgspec.defstruct("Typed_contact_info", [(c.name, Optional[list[c.struct]], None) for c in CONTACT],
                             forbid_unknown_fields=True, kw_only=True, gc=False)
USER = _Shape(None, USER_PLAN, [], [(c.name, Optional[list[c.struct]]) for c in TOP]
              + [(CONTACT_INFO, Optional[_Contact])])
_DECODER = msgspec.json.Decoder(USER.struct)
