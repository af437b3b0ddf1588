"""Statements from sql/: one purpose per file, values always bound.

A file may start with comment lines; `-- expanding: ids, groups` marks parameters that take a list
(`WHERE id IN :ids`). `sql/<name>.<dialect>.sql` overrides `sql/<name>.sql` where a dialect needs its
own wording (row locks on PostgreSQL, say).
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

from sqlalchemy import TextClause, bindparam, text

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
_EXPANDING = re.compile(r"^--\s*expanding:\s*(.+)$", re.MULTILINE)


@functools.cache
def load_sql(name: str, dialect: str | None = None) -> TextClause:
    path = SQL_DIR / f"{name}.{dialect}.sql" if dialect else None
    if path is None or not path.exists():
        path = SQL_DIR / f"{name}.sql"
    source = path.read_text(encoding="utf-8")
    # Header comments name the parameters (":ids"); text() would take them for bind parameters.
    statement = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("--"))
    clause = text(statement)
    match = _EXPANDING.search(source)
    if match:
        names = [n.strip() for n in match.group(1).split(",") if n.strip()]
        clause = clause.bindparams(*(bindparam(n, expanding=True) for n in names))
    return clause


def sql_for(conn, name: str) -> TextClause:
    """The statement `name` in the wording of the connection's dialect."""
    return load_sql(name, conn.dialect.name)
