"""JSON in and out for the Alma format: orjson where it is exact, the standard library where it is not.

orjson parses and writes 3-5x faster than the standard library, which at 100,000 users is most of a
load's parsing and of an export's writing. It is not exact everywhere, and the format promises exact
numbers, so:

- reading, orjson gives floats (not Decimals) and turns integers above 64 bits into floats. A float is
  exact for every number written with at most 15 significant digits (IEEE doubles hold 15 decimal
  digits: two such numbers never share a double, so the double gives back the same number). A text with
  a run of 16 or more digits (or digits and a point) may hold a number that is not, and is read by the
  standard library with Decimals, as is any text orjson refuses: its error messages, the ones the
  format has always given, come from there too.
- writing, orjson refuses integers above 64 bits and Decimals are not native to it; those documents are
  written by the standard library.

`exact_number` turns what either reader gives for a number outside the spec into the one form the
library keeps (an integer when the number is whole, else a float), so a field never seen comes back the
same whichever reader read it.
"""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson

# A run of 16 digits or points may be (part of) a number with more than 15 significant digits, or an
# integer beyond 64 bits. Found by mapping digits and points to "0" and all else to " " (a regular
# expression took as long as orjson's whole parse).
_DIGITS = bytes(0x30 if chr(b) in "0123456789." else 0x20 for b in range(256))
_RUN = b"0" * 16


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number this format accepts")


# One decoder for every line of a JSON Lines file (json.loads with options would build a new one per line).
_exact_loads = json.JSONDecoder(parse_float=Decimal, parse_constant=_refuse_constant).decode


def loads(data: bytes | str) -> Any:
    """A JSON text as Python objects; numbers exact (a float only where it is exactly the number
    written, else a Decimal). Refusals are the standard library's (json.JSONDecodeError, ValueError,
    UnicodeDecodeError for bytes that are not UTF-8)."""
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    if _RUN not in raw.translate(_DIGITS):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # worded by the standard library below
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    return _exact_loads(text)


def exact_number(value: float | Decimal) -> int | float:
    """A number outside the spec as the library keeps it: whole numbers as integers (exactly: 1e300 is
    10**300), others as the nearest float (exact for the 15 digits the reader guarantees)."""
    if isinstance(value, float):
        if value.is_integer():
            return int(Decimal(repr(value)))
        return value
    return int(value) if value == value.to_integral_value() else float(value)


def kept_numbers(value: Any) -> Any:
    """`value` (what a record carries outside the spec) with every number in the form the library
    keeps (exact_number); walked only for those fields, which are few."""
    cls = value.__class__
    if cls is dict:
        return {k: kept_numbers(v) for k, v in value.items()}
    if cls is list:
        return [kept_numbers(v) for v in value]
    if cls is float or cls is Decimal:
        return exact_number(value)
    return value


def default(value: Any) -> Any:
    """For json.dumps: the numbers the exact reader gives (Decimals)."""
    if isinstance(value, Decimal):  # a number kept from a field outside the spec, read exactly
        return exact_number(value)
    raise TypeError(f"cannot write a {type(value).__name__}")


_std_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=default).encode


def dumps(value: Any) -> str:
    """Compact JSON text, UTF-8 characters as they are (no \\u escapes)."""
    try:
        return orjson.dumps(value, default=default).decode("utf-8")
    except TypeError:  # an integer above 64 bits (orjson.JSONEncodeError is a TypeError)
        return _std_dumps(value)


def dumps_lines(values: list) -> bytes:
    """JSON Lines in UTF-8: one compact JSON text a value, each ended by a newline. Bytes, as they are
    written: a chunk of an export goes as bytes from the process that makes it to the file (export.py)."""
    try:
        return b"".join([orjson.dumps(v, default=default, option=orjson.OPT_APPEND_NEWLINE) for v in values])
    except TypeError:
        return "".join([dumps(v) + "\n" for v in values]).encode("utf-8")
