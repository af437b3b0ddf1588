"""Parsing of command-line values into typed values, with messages that name the bad value."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from pydantic import ValidationError

from tasks.errors import InvalidInput


def parse_int(flag: str, value: str, minimum: int | None = None) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise InvalidInput(f"{flag} must be a whole number, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise InvalidInput(f"{flag} must be at least {minimum}, got {value!r}")
    return number


def parse_amount(flag: str, value: str) -> Decimal:
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidInput(f"{flag} must be an amount such as 12.50, got {value!r}") from None
    if not amount.is_finite():
        raise InvalidInput(f"{flag} must be an amount such as 12.50, got {value!r}")
    return amount


def parse_date(flag: str, value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise InvalidInput(f"{flag} must be a date in the form YYYY-MM-DD, got {value!r}") from None


def validation_message(exc: ValidationError, flags: dict[str, str] | None = None) -> str:
    """A pydantic error in the operator's words: which flag, which value, what is wrong."""
    flags = flags or {}
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "parameters"
        name = flags.get(field, field)
        value = err.get("input")
        parts.append(f"{name}: {err['msg']} (got {value!r})")
    return "; ".join(parts)
