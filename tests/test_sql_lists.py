"""A statement's list parameter (`-- expanding:` in sql/, `in_list` in tasks/db/statements.py) finds the
same rows on both databases, whatever sequence the ids come in: what every batch statement relies on."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import insert, select

from tasks.db.schema import users
from tasks.db.statements import in_list


def _users(engine, n: int) -> list[int]:
    with engine.begin() as conn:
        conn.execute(insert(users), [{"primary_id": f"p{i}", "user_group": "UNDERGRAD", "record_type": "PUBLIC",
                                      "account_type": "INTERNAL", "status": "ACTIVE"} for i in range(n)])
        return list(conn.execute(select(users.c.id).order_by(users.c.id)).scalars())


def _ids_found(engine, statement, ids) -> list[int]:
    with engine.connect() as conn:
        return sorted(conn.execute(statement, {"ids": ids}).scalars())


def _shapes(engine) -> list:
    # PostgreSQL binds a list as one array and takes numpy's and pandas' too (LIST_AS_ARRAY); SQLite's
    # expanded IN takes plain sequences, which is what the callers give it (selection.restrict_params).
    return [list, tuple, set] + ([np.array, pd.Series] if engine.dialect.name == "postgresql" else [])


def test_a_list_of_ids_finds_exactly_those_rows(engine):
    ids = _users(engine, 30)
    wanted = ids[3:25:2]
    statement = select(users.c.id).where(in_list(users.c.id, "ids"))
    for shape in _shapes(engine):
        assert _ids_found(engine, statement, shape(wanted)) == wanted, shape


def test_ids_and_text_and_nothing(engine):
    ids = _users(engine, 5)
    by_id = select(users.c.id).where(in_list(users.c.id, "ids"))
    by_primary_id = select(users.c.id).where(in_list(users.c.primary_id, "ids"))
    assert _ids_found(engine, by_id, []) == []
    assert _ids_found(engine, by_primary_id, ["p1", "p3", "it's \"quoted\" {x,y}"]) == [ids[1], ids[3]]
    assert _ids_found(engine, by_primary_id, []) == []
    # A mixed list is not one of ids: its values are bound as they are.
    assert _ids_found(engine, by_id, [ids[0], None]) == [ids[0]]


def test_a_statement_of_sql_takes_its_list_in_any_shape(engine):
    from tasks.db.sql import sql_for

    ids = _users(engine, 8)
    with engine.connect() as conn:
        statement = sql_for(conn, "policy/select_primary_ids")
        for shape in [s for s in _shapes(engine) if s is not set]:  # a file's IN expands a sequence
            assert sorted(conn.execute(statement, {"ids": shape(ids[2:6])}).all()) == [(i, f"p{i - ids[0]}") for i in ids[2:6]]
