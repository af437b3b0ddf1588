"""Statements made with SQLAlchemy Core where they are the same for many tables (from the table of
parts, tasks/segments.py) or where the two dialects word them differently: SQLAlchemy renders each
dialect's wording, so there is no per-dialect copy of a statement and no no-op statement.

Hand-written SQL (selection, clash rules, the policy's row rewrite) stays in sql/.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import (BigInteger, Column, Integer, MetaData, String, Table, bindparam, delete, func, null, select,
                        union, update)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement, Select, any_
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


class InFewRows(ColumnElement[bool]):
    """`column IN (subquery)` for a subquery that finds few rows of a big table (a batch's fees among all
    fees). PostgreSQL plans IN (subquery) on its row estimate and chose a scan of the whole big table per
    batch (fee_transactions: 87 ms a purge batch at 1,000,000 users, BENCHMARKS.md); `= ANY(ARRAY(subquery))`
    runs the subquery first and looks each id up in the column's index. SQLite takes IN as it is."""

    type = Boolean()
    inherit_cache = True
    _is_implicitly_boolean = True

    def __init__(self, column: ColumnElement[Any], subquery: Select):
        self.column = column
        self.subquery = subquery


@compiles(InFewRows)
def _in_few_rows(element: InFewRows, compiler, **kw) -> str:
    return compiler.process(element.column.in_(element.subquery), **kw)


@compiles(InFewRows, "postgresql")
def _in_few_rows_postgresql(element: InFewRows, compiler, **kw) -> str:
    return f"{compiler.process(element.column, **kw)} = ANY(ARRAY({compiler.process(element.subquery, **kw)}))"


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


def insert_or_ignore(conn, table: Table):
    """`INSERT ... ON CONFLICT DO NOTHING`: both dialects have it, in SQLAlchemy as each dialect's own
    insert() (there is no generic one)."""
    return _DIALECT_INSERTS[conn.dialect.name](table).on_conflict_do_nothing()


def insert_or_update(conn, table: Table, keys: list[str], values: dict[str, Any]):
    """`INSERT ... ON CONFLICT (keys) DO UPDATE SET values`."""
    return _DIALECT_INSERTS[conn.dialect.name](table).on_conflict_do_update(index_elements=keys, set_=values)


_DIALECT_INSERTS = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}


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
    # Each kind found through its own index: as one OR of two id lists, PostgreSQL tested every proxy row
    # against both lists (a scan of the table per batch; 3.6 s of a 1,000,000-user purge, BENCHMARKS.md).
    owned = union(select(user_proxies.c.id).where(in_list(user_proxies.c.user_id)),
                  select(user_proxies.c.id).where(in_list(user_proxies.c.proxy_for_primary_id, "primary_ids")))
    ids = (select(user_proxies.c.id).where(user_proxies.c.id.in_(owned))
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
        owned = InFewRows(key.parent, select(key.column).where(in_list(key.column.table.c.user_id)))
    return update(table).where(table.c[column].is_not(None), owned).values({column: None})




# ---------------------------------------------------------------- anonymise: unlink rows from their users

class JsonObjectArray(ColumnElement[str]):
    """An aggregate: the rows as a JSON list of objects ({key: column, ...}) in the order of
    `order_by`, as text; `[]` for no rows. SQLite `json_group_array(json_object(...))`, which takes the
    rows in the order the (indexed, correlated) subquery reads them; PostgreSQL
    `json_agg(json_build_object(...) ORDER BY ...)`, which gives no rows NULL rather than `[]`."""

    type = Text()
    inherit_cache = True

    def __init__(self, fields: dict[str, ColumnElement[Any]], order_by: ColumnElement[Any]):
        self.fields = tuple(fields.items())
        self.order_by = order_by

    def _pairs(self, compiler, **kw) -> str:
        return ", ".join(f"'{key}', {compiler.process(value, **kw)}" for key, value in self.fields)


@compiles(JsonObjectArray)
def _json_object_array(element: JsonObjectArray, compiler, **kw) -> str:
    return f"json_group_array(json_object({element._pairs(compiler, **kw)}))"


@compiles(JsonObjectArray, "postgresql")
def _json_object_array_postgresql(element: JsonObjectArray, compiler, **kw) -> str:
    order = compiler.process(element.order_by, **kw)
    return (f"COALESCE(CAST(json_agg(json_build_object({element._pairs(compiler, **kw)}) ORDER BY {order}) "
            f"AS TEXT), '[]')")


def statistics_of(user_id: ColumnElement[Any]):
    """The user's statistical categories as they stand, a JSON list of {"category_type",
    "statistic_category"} in the order they were recorded (no statistic notes: they are free text)."""
    s = schema.user_statistics
    return (select(JsonObjectArray({"category_type": s.c.category_type,
                                    "statistic_category": s.c.statistic_category}, s.c.id))
            .where(s.c.user_id == user_id).scalar_subquery())


def unlink_from_users(table_name: str, rows: ColumnElement[bool] | None = None):
    """Anonymise loan history's one statement per kind: unlink rows of `table_name` (loans, requests,
    fees) from their users, keeping what statistics need as it stands now (the user's group, record
    type, account type and statistical categories) and `anonymized_at = :now`. The row keeps its own
    dates, library, item and amounts; a fee's free-text comment goes, and every row's `extra` (the Alma
    fields kept as loaded: an Alma loan carries its patron's `user_id`, a request `user_primary_id`).
    `rows` says which: the ids `:ids`
    by default. Only rows the job may touch are reached (returned loans, requests in history, closed
    fees without balance), so the caller can compare the row count with what it re-checked."""
    table = schema.metadata.tables[table_name]
    u = schema.users
    still_closed = {
        "loans": lambda t: t.c.loan_status == "COMPLETE",
        "requests": lambda t: t.c.request_status == "HISTORY",
        "fees": lambda t: (t.c.status == "CLOSED") & (t.c.balance_minor == 0),
    }[table_name](table)
    values: dict[str, Any] = {
        "anon_user_group": u.c.user_group,
        "anon_record_type": u.c.record_type,
        "anon_account_type": u.c.account_type,
        "anon_statistics": statistics_of(table.c.user_id),
        "anonymized_at": bindparam("now"),
        "extra": null(),
        "user_id": null(),
    }
    if table_name == "fees":
        values["comment"] = null()
    return (update(table)
            .where(u.c.id == table.c.user_id, in_list(table.c.id) if rows is None else rows, still_closed)
            .values(**values))


# What separates one value of a list from the next in users_to_scan (the unit separator).
LIST_SEPARATOR = "\x1f"


def users_to_scan():
    """Find Duplicate Users' selection: every user not purged, with what identifies a person (names,
    birth date, group, account type) and the lists (emails, phones, postal codes, identifiers as
    TYPE:value) aggregated by the database, values separated by LIST_SEPARATOR: `group_concat` on
    SQLite, `string_agg` on PostgreSQL (SQLAlchemy's aggregate_strings renders each). Parameters:
    :all_groups (1: every group), :groups (user-group codes)."""
    u = schema.users

    def listed(table: Table, value: ColumnElement[Any], label: str, where=None):
        stmt = select(table.c.user_id, func.aggregate_strings(value, LIST_SEPARATOR).label(label))
        if where is not None:
            stmt = stmt.where(where)
        return stmt.group_by(table.c.user_id).subquery(label)

    a = schema.user_addresses
    i = schema.user_identifiers
    lists = [
        listed(schema.user_emails, schema.user_emails.c.email_address, "emails"),
        listed(schema.user_phones, schema.user_phones.c.phone_number, "phones"),
        listed(a, a.c.postal_code, "postal_codes", (a.c.postal_code.is_not(None)) & (a.c.postal_code != "")),
        listed(i, i.c.id_type + ":" + i.c.value, "identifiers"),
    ]
    source = u
    for sub in lists:
        source = source.outerjoin(sub, sub.c.user_id == u.c.id)
    return (select(u.c.id.label("user_id"), u.c.primary_id, u.c.first_name, u.c.middle_name, u.c.last_name,
                   u.c.birth_date, u.c.user_group, u.c.account_type, *(sub.c[sub.name] for sub in lists))
            .select_from(source)
            .where(u.c.purged_at.is_(None))
            .where((bindparam("all_groups") == 1) | in_list(u.c.user_group, "groups"))
            .order_by(u.c.id))
