"""The demo library: deterministic, shaped like a real one, and good for demonstrating every job."""
from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict

import pytest
from sqlalchemy import delete, func, insert, select

from tasks.devtools.demo import builder
from tasks.db import schema
from tasks.library.codes import code_values
from tasks.devtools.demo import make_demo_library
from tasks.errors import InvalidInput
from tasks.library.money import from_minor

TODAY = dt.date(2026, 12, 20)
MIDNIGHT = dt.datetime.combine(TODAY, dt.time())
TABLES = (
    schema.users, schema.user_identifiers, schema.user_addresses, schema.user_emails, schema.user_phones,
    schema.user_notes, schema.user_attachments, schema.user_roles, schema.user_blocks, schema.user_statistics,
    schema.user_proxies, schema.loans, schema.requests, schema.fees, schema.fee_transactions,
)


def _dump(engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {t.name: [tuple(r) for r in conn.execute(select(t).order_by(t.c.id))] for t in TABLES}


def _empty_library(engine) -> None:
    with engine.begin() as conn:
        for table in reversed(TABLES):
            conn.execute(delete(table))


def _rows(conn, table, *where):
    return [r._mapping for r in conn.execute(select(table).where(*where))]


@pytest.fixture
def library(engine):
    """2,000 demo users: big enough for the proportions to settle, small enough to stay fast."""
    counts = make_demo_library(engine, users=2000, seed=42, today=TODAY)
    return engine, counts


def test_same_seed_gives_the_same_library_and_another_seed_another(engine, monkeypatch):
    # Small chunks, so the determinism also covers chunk boundaries.
    monkeypatch.setattr(builder, "CHUNK_USERS", 128)
    first_counts = make_demo_library(engine, users=300, seed=7, today=TODAY)
    first = _dump(engine)
    _empty_library(engine)
    assert make_demo_library(engine, users=300, seed=7, today=TODAY) == first_counts
    assert _dump(engine) == first
    _empty_library(engine)
    make_demo_library(engine, users=300, seed=8, today=TODAY)
    other = _dump(engine)
    assert other["users"] != first["users"]
    assert other["loans"] != first["loans"]

    assert first_counts["users"] == 300
    assert first_counts == {name: len(rows) for name, rows in first.items()}
    primary_ids = [row[1] for row in first["users"]]
    assert primary_ids == [f"demo{k:06d}" for k in range(1, 301)]


def test_users_look_like_a_real_library(library):
    engine, counts = library
    n = counts["users"]
    with engine.connect() as conn:
        users = _rows(conn, schema.users)
    assert len(users) == n == 2000

    record_types = Counter(u["record_type"] for u in users)
    assert record_types["PUBLIC"] / n >= 0.75
    assert 0.08 <= record_types["STAFF"] / n <= 0.20
    assert 0 < record_types["CONTACT"] / n <= 0.06
    groups = Counter(u["user_group"] for u in users)
    assert (groups["UNDERGRAD"] + groups["GRAD"]) / n >= 0.6
    assert groups["FACULTY"] > 0 and groups["STAFF"] > 0
    accounts = Counter(u["account_type"] for u in users)
    assert 0.05 <= accounts["INTERNAL"] / n <= 0.25 and accounts["EXTERNAL"] > accounts["INTERNAL"]

    first_names = {u["first_name"] for u in users}
    assert {"José", "Øyvind", "Zoë"} & first_names
    assert all(u["first_name"] and u["last_name"] for u in users)
    people = [u for u in users if u["record_type"] != "CONTACT"]
    assert all(dt.date(1930, 1, 1) < u["birth_date"] < TODAY - dt.timedelta(days=5 * 365) for u in people)
    assert all(u["expiry_date"] is not None for u in users)

    past = [u for u in users if u["purge_date"] is not None and u["purge_date"] < TODAY]
    future = [u for u in users if u["purge_date"] is not None and u["purge_date"] >= TODAY]
    missing = [u for u in users if u["purge_date"] is None]
    assert 0.20 <= len(past) / n <= 0.30
    assert 0.30 <= len(future) / n <= 0.40
    assert 0.35 <= len(missing) / n <= 0.45
    assert min(u["purge_date"] for u in past) >= TODAY - dt.timedelta(days=731)
    assert max(u["purge_date"] for u in past) >= TODAY - dt.timedelta(days=60)
    assert all(u["expiry_date"] < u["purge_date"] for u in past + future)

    protected = sum(u["protected"] for u in users)
    assert 1 <= protected <= 0.015 * n


def test_duplicate_looking_users_are_there_to_merge(library):
    engine, counts = library
    with engine.connect() as conn:
        users = _rows(conn, schema.users, schema.users.c.record_type != "CONTACT")
        extra_roles = {r.user_id for r in conn.execute(
            select(schema.user_roles.c.user_id).where(schema.user_roles.c.role_type != "200"))}
    same_person = defaultdict(list)
    for u in users:
        same_person[(u["first_name"], u["middle_name"], u["last_name"], u["birth_date"])].append(u)
    groups = [g for g in same_person.values() if len(g) > 1]
    assert 0.01 * counts["users"] <= len(groups) <= 0.05 * counts["users"]
    assert all(len({u["primary_id"] for u in g}) == len(g) for g in groups)
    mixed = [g for g in groups if len({u["account_type"] for u in g}) == 2]
    assert len(mixed) >= len(groups) / 3
    # At least some pairs can be merged: the From side holds only the Patron role.
    assert any(any(u["id"] not in extra_roles for u in g) for g in groups)


def test_every_fee_keeps_the_ledger(library):
    engine, counts = library
    with engine.connect() as conn:
        fees = _rows(conn, schema.fees)
        paid = defaultdict(int)
        tx_times = defaultdict(list)
        for t in _rows(conn, schema.fee_transactions):
            assert t["type"] == "PAYMENT" and isinstance(t["amount_minor"], int) and t["amount_minor"] > 0
            paid[t["fee_id"]] += t["amount_minor"]
            tx_times[t["fee_id"]].append(t["transaction_time"])
        users_with_fees = conn.execute(select(func.count(func.distinct(schema.fees.c.user_id)))).scalar()
    assert len(fees) == counts["fees"] and len(paid) and sum(len(v) for v in tx_times.values()) == counts["fee_transactions"]
    for fee in fees:
        assert isinstance(fee["balance_minor"], int) and isinstance(fee["original_amount_minor"], int)
        assert fee["balance_minor"] == fee["original_amount_minor"] - paid[fee["id"]], fee["fee_id"]
        assert fee["balance_minor"] >= 0
        assert (fee["balance_minor"] == 0) == (fee["status"] == "CLOSED"), fee["fee_id"]
        assert all(fee["creation_time"] < t < MIDNIGHT for t in tx_times[fee["id"]])

    n = counts["users"]
    assert 0.28 <= users_with_fees / n <= 0.40
    assert {f["fee_type"] for f in fees} == {
        "OVERDUEFINE", "LOSTITEMREPLACEMENTFEE", "LOSTITEMPROCESSFEE", "DAMAGEDITEMFINE", "CARDRENEWAL"}
    amounts = [from_minor(f["original_amount_minor"]) for f in fees]
    assert str(min(amounts)) == "0.50" and max(amounts) <= from_minor(15000) and max(amounts) > from_minor(10000)
    statuses = Counter(f["status"] for f in fees)
    assert statuses.most_common(1)[0][0] == "ACTIVE" and statuses["CLOSED"] > 0
    partly_paid = [f for f in fees if f["status"] == "ACTIVE" and 0 < f["balance_minor"] < f["original_amount_minor"]]
    assert len(partly_paid) > 0


def test_loans_and_requests_are_mostly_history(library):
    engine, counts = library
    n = counts["users"]
    with engine.connect() as conn:
        loans = _rows(conn, schema.loans)
        requests = _rows(conn, schema.requests)
        libraries = code_values(conn, "library")
    assert 2.5 <= len(loans) / n <= 3.5
    complete = [loan for loan in loans if loan["loan_status"] == "COMPLETE"]
    active = [loan for loan in loans if loan["loan_status"] == "ACTIVE"]
    assert len(complete) / len(loans) >= 0.7
    assert all(loan["return_date"] is not None and loan["loan_date"] < loan["return_date"] < MIDNIGHT for loan in complete)
    assert all(loan["return_date"] is None for loan in active)
    overdue = [loan for loan in active if loan["due_date"] < MIDNIGHT]
    assert 0 < len(overdue) < len(active)
    assert all(loan["loan_date"] < loan["due_date"] for loan in loans)
    assert {loan["library"] for loan in loans} <= libraries

    statuses = Counter(r["request_status"] for r in requests)
    assert statuses.most_common(1)[0][0] == "HISTORY"
    assert statuses["NOT_STARTED"] and statuses["IN_PROCESS"] and statuses["ON_HOLD_SHELF"]


def test_identifiers_roles_and_contacts(library):
    engine, counts = library
    n = counts["users"]
    with engine.connect() as conn:
        users = {u["id"]: u for u in _rows(conn, schema.users)}
        identifiers = _rows(conn, schema.user_identifiers)
        roles = _rows(conn, schema.user_roles)
        role_types = code_values(conn, "role-type")
        contact_rows = {t.name: _rows(conn, t) for t in (schema.user_addresses, schema.user_emails, schema.user_phones)}
        for table in (schema.user_notes, schema.user_blocks, schema.user_statistics, schema.user_attachments,
                      schema.user_proxies):
            assert 0 < conn.execute(select(func.count()).select_from(table)).scalar() < n, table.name

    assert len({(i["id_type"], i["value"]) for i in identifiers}) == len(identifiers)
    barcodes = Counter(i["user_id"] for i in identifiers if i["id_type"] == "BARCODE")
    assert set(barcodes) == set(users) and set(barcodes.values()) == {1}
    univ_ids = sum(1 for i in identifiers if i["id_type"] == "UNIV_ID")
    assert 0.5 * n <= univ_ids < n

    patrons = Counter(r["user_id"] for r in roles if r["role_type"] == "200")
    assert set(patrons) == set(users) and set(patrons.values()) == {1}
    desk = {r["user_id"] for r in roles if r["role_type"] == "21"}
    assert desk and all(users[u]["record_type"] == "STAFF" for u in desk)
    assert {r["role_type"] for r in roles} <= role_types

    for name, rows in contact_rows.items():
        preferred = Counter(r["user_id"] for r in rows if r["preferred"])
        owners = {r["user_id"] for r in rows}
        assert set(preferred) == owners and set(preferred.values()) == {1}, name
        assert len(owners) >= 0.75 * n, name


def test_the_nightly_purge_has_users_to_purge_and_users_to_skip(library):
    engine, counts = library
    with engine.connect() as conn:
        lapsed = {u["id"]: u for u in _rows(conn, schema.users, schema.users.c.purge_date < TODAY)}
        active_loans = {r.user_id for r in conn.execute(
            select(schema.loans.c.user_id).where(schema.loans.c.loan_status == "ACTIVE"))}
        active_requests = {r.user_id for r in conn.execute(
            select(schema.requests.c.user_id).where(schema.requests.c.request_status != "HISTORY"))}
        owing = {r.user_id for r in conn.execute(
            select(schema.fees.c.user_id).where(schema.fees.c.status != "CLOSED", schema.fees.c.balance_minor > 0))}
    reasons = {
        "PROTECTED": {u for u, row in lapsed.items() if row["protected"]},
        "ACTIVE_LOANS": set(lapsed) & active_loans,
        "ACTIVE_REQUESTS": set(lapsed) & active_requests,
        "OWES_ABOVE_THRESHOLD": set(lapsed) & owing,
    }
    purgeable = set(lapsed) - set().union(*reasons.values())
    assert len(purgeable) >= 0.5 * len(lapsed)
    assert len(purgeable) <= 0.9 * len(lapsed)
    for reason, skipped in reasons.items():
        assert skipped, f"no lapsed user would be skipped as {reason}"


def test_later_inserts_get_fresh_ids(library):
    engine, counts = library
    with engine.begin() as conn:
        new_id = conn.execute(insert(schema.users).values(primary_id="walk-in-1", account_type="INTERNAL")).inserted_primary_key[0]
        loan_id = conn.execute(insert(schema.loans).values(user_id=new_id, loan_id="walk-in-loan", loan_status="ACTIVE")).inserted_primary_key[0]
    assert new_id == counts["users"] + 1
    assert loan_id == counts["loans"] + 1


def test_refuses_a_library_that_already_has_users(engine):
    make_demo_library(engine, users=5, seed=1, today=TODAY)
    before = _dump(engine)
    with pytest.raises(InvalidInput, match="already contains users"):
        make_demo_library(engine, users=5, seed=2, today=TODAY)
    assert _dump(engine) == before


@pytest.mark.parametrize("users", [0, -3, "abc", 2.5, True])
def test_rejects_a_bad_number_of_users(engine, users):
    with pytest.raises(InvalidInput, match="at least 1"):
        make_demo_library(engine, users=users, seed=1)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.users)).scalar() == 0


def test_cli_demo_data(cli, engine):
    code, out, err = cli("demo-data", "--users", "200", "--seed", "1")
    assert code == 0, err
    counts = json.loads(out)
    assert counts["users"] == 200 and counts["loans"] > 200
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.users)).scalar() == 200

    code, out, err = cli("demo-data", "--users", "200", "--seed", "1")
    assert code == 2 and "already contains users" in err

    code, out, err = cli("demo-data", "--users", "abc")
    assert code == 2 and "--users" in err and "abc" in err
