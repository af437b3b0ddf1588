"""The demo writes its rows with explicit ids (so the same seed gives the same ids, and children can
name their parents without a round trip): where each table's ids start, and, afterwards, moving each id
sequence past them so that later inserts do not collide.

SQLite needs no such step: an INTEGER PRIMARY KEY takes MAX(id) + 1 by itself. PostgreSQL's SERIAL and
IDENTITY columns draw from a sequence, found with pg_get_serial_sequence and moved with setval; one
statement, built with SQLAlchemy Core, does every table. setval() ignores a NULL (an empty table),
leaving that sequence as it was.
"""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, Table, func, select


def first_free_ids(conn: Connection, tables: Iterable[Table]) -> dict[str, int]:
    """Table name -> the first id above every id the table holds."""
    return {t.name: (conn.execute(select(func.max(t.c.id))).scalar() or 0) + 1 for t in tables}


def advance_id_sequences(conn: Connection, tables: Iterable[Table]) -> None:
    """Move the id sequence of every table in `tables` to the table's largest id (databases with sequences)."""
    if not conn.dialect.supports_sequences:
        return
    conn.execute(select(*(
        func.setval(func.pg_get_serial_sequence(t.name, t.c.id.name), select(func.max(t.c.id)).scalar_subquery())
        for t in tables
    )))
