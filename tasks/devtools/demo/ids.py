"""The demo writes its rows with explicit ids (so the same seed gives the same ids, and children can
name their parents without a round trip): where each table's ids start."""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, Table, func, select


def first_free_ids(conn: Connection, tables: Iterable[Table]) -> dict[str, int]:
    """Table name -> the first id above every id the table holds."""
    return {t.name: (conn.execute(select(func.max(t.c.id))).scalar() or 0) + 1 for t in tables}
