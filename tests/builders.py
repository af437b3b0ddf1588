"""Small, explicit library fixtures for tests: insert a user with the loans, requests and fees a
test needs, straight into the tables (independent of the Alma loader)."""
from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, insert, select

from tasks.db.engine import write_transaction
from tasks.library.money import to_minor
from tasks.db.schema import (fee_transactions, fees, loans, requests, user_addresses, user_identifiers,
                          user_notes, user_roles, users)

_seq = itertools.count(1)


def add_user(engine: Engine, primary_id: str, *, purge_date: dt.date | None = None, user_group: str = "UNDERGRAD",
             record_type: str = "PUBLIC", account_type: str = "EXTERNAL", protected: bool = False,
             first_name: str = "Ada", last_name: str = "Lovelace", birth_date: dt.date | None = dt.date(1990, 1, 2),
             active_loans: int = 0, overdue_loans: int = 0, history_loans: int = 0,
             active_requests: int = 0, history_requests: int = 0,
             fees_owed: list[str | Decimal] | None = None, fee_type: str = "OVERDUEFINE",
             fee_types: list[str] | None = None, closed_fees: int = 0, roles: list[str] | None = None,
             now: dt.datetime | None = None, **extra: Any) -> int:
    """Insert one user; `fees_owed` are the balances of active fees (decimal strings)."""
    now = now or dt.datetime(2026, 12, 20, 12, 0, 0)
    with write_transaction(engine) as conn:
        user_id = conn.execute(insert(users).values(
            primary_id=primary_id, first_name=first_name, last_name=last_name, user_group=user_group,
            record_type=record_type, account_type=account_type, status="ACTIVE", purge_date=purge_date,
            birth_date=birth_date, protected=protected, **extra,
        ).returning(users.c.id)).scalar_one()
        conn.execute(insert(user_identifiers).values(user_id=user_id, id_type="BARCODE", value=f"B-{primary_id}",
                                                     status="ACTIVE", segment_type="External"))
        conn.execute(insert(user_addresses).values(user_id=user_id, line1="1 Main St", city="Oslo", preferred=True,
                                                   address_types="home", segment_type="External"))
        conn.execute(insert(user_notes).values(user_id=user_id, note_type="GENERAL", note_text=f"note on {primary_id}",
                                               segment_type="Internal"))
        for role in roles or ["200"]:
            conn.execute(insert(user_roles).values(user_id=user_id, role_type=role, scope="MAIN", status="ACTIVE"))
        loan_rows = []
        for status, due, returned, n in [
            ("ACTIVE", now + dt.timedelta(days=14), None, active_loans),
            ("ACTIVE", now - dt.timedelta(days=3), None, overdue_loans),
            ("COMPLETE", now - dt.timedelta(days=30), now - dt.timedelta(days=31), history_loans),
        ]:
            for _ in range(n):
                loan_rows.append({"user_id": user_id, "loan_id": f"L{next(_seq)}", "item_barcode": "I1", "title": "A book",
                                  "loan_date": due - dt.timedelta(days=28), "due_date": due, "return_date": returned,
                                  "loan_status": status, "process_status": "NORMAL", "library": "MAIN"})
        if loan_rows:
            conn.execute(insert(loans), loan_rows)
        request_rows = [
            {"user_id": user_id, "request_id": f"R{next(_seq)}", "request_type": "HOLD", "request_status": status,
             "title": "A book", "request_date": now.date(), "pickup_location_library": "MAIN"}
            for status, n in [("NOT_STARTED", active_requests), ("HISTORY", history_requests)] for _ in range(n)
        ]
        if request_rows:
            conn.execute(insert(requests), request_rows)
        types = fee_types or [fee_type] * len(fees_owed or [])
        for balance, ftype in zip(fees_owed or [], types):
            add_fee(conn, user_id, balance, fee_type=ftype, now=now)
        for _ in range(closed_fees):
            fee_id = add_fee(conn, user_id, "5.00", fee_type=fee_type, now=now)
            pay(conn, fee_id, "5.00", now=now)
    return user_id


def add_fee(conn, user_id: int, balance: str | Decimal, *, fee_type: str = "OVERDUEFINE",
            original: str | Decimal | None = None, now: dt.datetime | None = None) -> int:
    """An active fee with the given balance; if `original` is larger, a payment makes up the difference."""
    now = now or dt.datetime(2026, 12, 1, 12, 0, 0)
    original = original if original is not None else balance
    fee_id = conn.execute(insert(fees).values(
        user_id=user_id, fee_id=f"F{next(_seq)}", fee_type=fee_type, status="ACTIVE",
        balance_minor=to_minor(original), original_amount_minor=to_minor(original),
        creation_time=now - dt.timedelta(days=10), owner="MAIN", title="A book",
    ).returning(fees.c.id)).scalar_one()
    paid = Decimal(str(original)) - Decimal(str(balance))
    if paid:
        pay(conn, fee_id, paid, now=now)
    return fee_id


def pay(conn, fee_id: int, amount: str | Decimal, *, now: dt.datetime | None = None) -> None:
    """A payment: a PAYMENT transaction and the balance reduced; CLOSED when nothing is left."""
    now = now or dt.datetime(2026, 12, 1, 12, 0, 0)
    minor = to_minor(amount)
    conn.execute(insert(fee_transactions).values(fee_id=fee_id, type="PAYMENT", amount_minor=minor,
                                                 transaction_time=now))
    balance = conn.execute(select(fees.c.balance_minor).where(fees.c.id == fee_id)).scalar_one() - minor
    conn.execute(fees.update().where(fees.c.id == fee_id).values(
        balance_minor=balance, status="CLOSED" if balance == 0 else "ACTIVE"))


def ledger_errors(engine: Engine) -> list[Any]:
    """Fees whose balance is not original amount minus transactions (should always be empty)."""
    paid = (select(fee_transactions.c.fee_id, func.sum(fee_transactions.c.amount_minor).label("paid"))
            .group_by(fee_transactions.c.fee_id).subquery())
    query = (select(fees.c.fee_id, fees.c.balance_minor, fees.c.original_amount_minor, paid.c.paid)
             .select_from(fees.outerjoin(paid, paid.c.fee_id == fees.c.id))
             .where(fees.c.balance_minor != fees.c.original_amount_minor - func.coalesce(paid.c.paid, 0)))
    with engine.connect() as conn:
        return conn.execute(query).all()
