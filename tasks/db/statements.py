"""Statements made with SQLAlchemy Core where they are the same for many tables (from the table of
parts, tasks/segments.py) or where the two dialects word them differently: SQLAlchemy renders each
dialect's wording, so there is no per-dialect copy of a statement and no no-op statement.

Hand-written SQL (selection, clash rules, the policy's row rewrite) stays in sql/.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import (BigInteger, Column, Integer, MetaData, String, Table, bindparam, delete, select,
                        update)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement, any_
from sqlalchemy.types import Boolean, Text

from tasks.db import schema
from tasks.db.sql import LIST_AS_ARRAY

Id = BigInteger().with_variant(Integer(), "sqlite")


class InList(ColumnElement[bool]):
    """`column IN :name` for a list bound once: on PostgreSQL `= ANY(:name)` with the list sent as one
    array (a batch's statements carry thousands of ids, and one bound value per id cost more than the
    statement itself: BENCHMARKS.md); SQLite has no arrays and takes the expanded `IN (?, ?, ...)`."""

    type = Boolean()
    inherit_cache = True
    _is_implicitly_boolean = True  # a comparison already: no "= 1" on databases without booleans

    def __init__(self, column: ColumnElement[Any], name: str):
        self.column = column
        self.name = name


@compiles(InList)
def _in_list(element: InList, compiler, **kw) -> str:
    return compiler.process(element.column.in_(bindparam(element.name, expanding=True)), **kw)


@compiles(InList, "postgresql")
def _in_list_postgresql(element: InList, compiler, **kw) -> str:
    return compiler.process(element.column == any_(bindparam(element.name, type_=LIST_AS_ARRAY)), **kw)


def in_list(column: ColumnElement[Any], name: str = "ids") -> InList:
    return InList(column, name)


class AdvisoryLock(FunctionElement):
    """A transaction-scoped lock on a number (PostgreSQL `pg_advisory_xact_lock[_shared]`). SQLite has
    no such lock and needs none: a write transaction there already holds the one database write lock."""

    type = Boolean()
    inherit_cache = True

    def __init__(self, key: int, shared: bool):
        self.key = key
        self.shared = shared
        super().__init__()


@compiles(AdvisoryLock)
def _advisory_lock(element: AdvisoryLock, compiler, **kw) -> str:
    return "1"


@compiles(AdvisoryLock, "postgresql")
def _advisory_lock_postgresql(element: AdvisoryLock, compiler, **kw) -> str:
    function = "pg_advisory_xact_lock_shared" if element.shared else "pg_advisory_xact_lock"
    return f"{function}({int(element.key)})"


def advisory_lock(key: int, *, shared: bool = False):
    return select(AdvisoryLock(key, shared))


class JsonString(FunctionElement):
    """A text value as a JSON string literal, quoted by the database (SQLite `json_quote`, PostgreSQL
    `to_json`), so audit details written set-based need no per-row Python."""

    type = Text()
    inherit_cache = True


@compiles(JsonString)
def _json_string(element: JsonString, compiler, **kw) -> str:
    return f"json_quote({compiler.process(element.clauses, **kw)})"


@compiles(JsonString, "postgresql")
def _json_string_postgresql(element: JsonString, compiler, **kw) -> str:
    return f"CAST(to_json({compiler.process(element.clauses, **kw)}) AS TEXT)"


# ---------------------------------------------------------------- merge: the batch's pairs as a table

# One row per pair of a batch, so each kind moves for every pair of the batch in one statement. A
# temporary table, created and dropped inside the batch's transaction (both dialects roll DDL back
# with it, so a failed batch leaves none behind).
pair_map = Table(
    "merge_pair_map", MetaData(),
    Column("from_id", Id, primary_key=True),
    Column("to_id", Id, nullable=False, unique=True),
    Column("from_primary_id", String(255), nullable=False, unique=True),
    Column("to_primary_id", String(255), nullable=False, unique=True),
    Column("segment_type", String(8), nullable=False),
    prefixes=["TEMPORARY"],
)


def move_to_user(table_name: str, segment_typed: bool):
    """Every row of the batch's From users in `table_name` now belongs to the To user (and takes the
    pair's segment type where the table has one)."""
    table = schema.metadata.tables[table_name]
    own = pair_map.c.from_id == table.c.user_id
    values: dict[str, Any] = {"user_id": select(pair_map.c.to_id).where(own).scalar_subquery()}
    if segment_typed:
        values["segment_type"] = select(pair_map.c.segment_type).where(own).scalar_subquery()
    return update(table).where(table.c.user_id.in_(select(pair_map.c.from_id))).values(**values)


# ---------------------------------------------------------------- the delete-user policy

def delete_rows_of_users(table_name: str):
    """The rows of the users `:ids` in `table_name`."""
    table = schema.metadata.tables[table_name]
    return delete(table).where(in_list(table.c.user_id))


def delete_proxy_rows(user_proxies: Table = schema.user_proxies):
    """The proxy rows of the users `:ids` (they are someone's proxy) and those naming them
    (`:primary_ids`: someone is their proxy). Two purge batches running at once can share such rows (a
    proxy in one batch for a user in the other). Deleted kind by kind, they were locked in opposite
    orders and the batches deadlocked; locked up front, the second batch waited for the whole of the
    first (both seen at 1,000,000 users, BENCHMARKS.md). So they are locked in id order (FOR UPDATE on
    PostgreSQL), as the last statement of the batch: a batch waits at most for the other's last
    statement and commit."""
    ids = (select(user_proxies.c.id)
           .where(in_list(user_proxies.c.user_id) | in_list(user_proxies.c.proxy_for_primary_id, "primary_ids"))
           .order_by(user_proxies.c.id).with_for_update())
    return delete(user_proxies).where(user_proxies.c.id.in_(ids))


def clear_column_of_users(table_name: str, column: str):
    """Empty a column of the users `:ids` (the policy's keep-statistics and stricter: free text, and
    `extra`). A table without a user_id (fee_transactions) reaches the users through the table its
    foreign key names (`fee_id IN (SELECT id FROM fees WHERE user_id IN :ids)`)."""
    table = schema.metadata.tables[table_name]
    if "user_id" in table.c:
        owned = in_list(table.c.user_id)
    else:
        key = next(fk for fk in table.foreign_keys if "user_id" in fk.column.table.c)
        owned = key.parent.in_(select(key.column).where(in_list(key.column.table.c.user_id)))
    return update(table).where(table.c[column].is_not(None), owned).values({column: None})


