"""Statements from sql/: one purpose per file, values always bound.

A file may start with comment lines; `-- expanding: ids, groups` marks parameters that take a list
(`WHERE id IN :ids`). A statement is worded once for both databases; where they word something
differently, the statement is made with SQLAlchemy instead (tasks/db/statements.py), which renders each.

On PostgreSQL a list parameter is sent as one array (`id = ANY(:ids)`) rather than expanded into a
bound value per element: a batch's statements each carry a thousand ids, and expanding them cost more
than running the statement (profiled at 1,000,000 users, BENCHMARKS.md). SQLite has no arrays and
keeps the expanded `IN (?, ?, ...)`.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

from sqlalchemy import TextClause, bindparam, text
from sqlalchemy.types import NullType, TypeDecorator

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
_EXPANDING = re.compile(r"^--\s*expanding:\s*(.+)$", re.MULTILINE)


@functools.cache
def load_sql(name: str, dialect: str | None = None) -> TextClause:
    source = (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")
    # Header comments name the parameters (":ids"); text() would take them for bind parameters.
    statement = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("--"))
    match = _EXPANDING.search(source)
    names = [n.strip() for n in match.group(1).split(",") if n.strip()] if match else []
    if names and dialect == "postgresql":
        for name in names:
            statement = re.sub(rf"\bNOT\s+IN\s+:{name}\b", f"<> ALL(:{name})", statement, flags=re.IGNORECASE)
            statement = re.sub(rf"\bIN\s+:{name}\b", f"= ANY(:{name})", statement, flags=re.IGNORECASE)
        return text(statement).bindparams(*(bindparam(n, type_=LIST_AS_ARRAY) for n in names))
    clause = text(statement)
    if names:
        clause = clause.bindparams(*(bindparam(n, expanding=True) for n in names))
    return clause


class _ListAsArray(TypeDecorator):
    """Any sequence (list, tuple, set, numpy array) as one PostgreSQL array: psycopg2 sends a list as
    one ARRAY, but a tuple as a parenthesised list and a numpy integer not at all. A list of ids (the
    batches' lists) goes as one array literal: psycopg2 adapts a list element by element, 18 ms of
    held GIL for 5,000 ids against 2 ms for the joined text, and a batch sends five such lists
    (BENCHMARKS.md, change 23). Text and other values keep psycopg2's own quoting."""

    impl = NullType
    cache_ok = True

    def process_bind_param(self, value, dialect):
        values = value.tolist() if hasattr(value, "tolist") else [v.item() if hasattr(v, "item") else v
                                                                  for v in value]
        # Exactly int (not bool): str() of an int is digits and a sign, nothing to quote. An empty
        # list stays a list, whose '{}' takes the type of whatever it is compared with.
        if values and all(type(v) is int for v in values):
            from psycopg2.extensions import AsIs

            return AsIs("'{" + ",".join(map(str, values)) + "}'::bigint[]")
        return values


LIST_AS_ARRAY = _ListAsArray()


def sql_for(conn, name: str) -> TextClause:
    """The statement `name` in the wording of the connection's dialect."""
    return load_sql(name, conn.dialect.name)
