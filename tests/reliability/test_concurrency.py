"""Concurrent activity: the circulation desk keeps working while a job runs. Loans, requests,
payments and new fines written by another connection between selection and apply are never lost and
never wrongly processed (each batch re-checks its guards under lock); two real runs of the same job
never process the same user twice (the job lock refuses the second with a clear message)."""
from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable

import pytest
from sqlalchemy import create_engine, insert, select, text

from tasks.errors import JobRefused
from tasks.db.job_lock import job_lock
from tasks.db.schema import fee_transactions, fees, loans, requests, user_roles, users
from tests.builders import add_fee, add_user, pay
from tests.reliability.conftest import TODAY, start_cli
from tests.reliability.invariants import ledger_errors, waived_twice

AS_OF = TODAY
PURGE_DATE = AS_OF - dt.timedelta(days=30)


def interfere_before_apply(monkeypatch, action: Callable[[], None]) -> None:
    """Run `action` (another connection's committed writes) after selection, before the batches."""
    import tasks.engine.runner

    original = tasks.engine.runner.apply_in_batches

    def apply_after_interference(*args, **kwargs):
        action()
        return original(*args, **kwargs)

    monkeypatch.setattr(tasks.engine.runner, "apply_in_batches", apply_after_interference)


def other_connection(db_url: str):
    """A second engine of its own: the circulation desk, not the job's pool."""
    return create_engine(db_url)


def test_purge_leaves_alone_users_who_borrowed_requested_paid_or_were_fined_since_selection(
        engine, db_url, prefect_api, monkeypatch):
    from flows.purge_users import purge_user_records

    ids = {name: add_user(engine, name, purge_date=PURGE_DATE, fees_owed=["5.00"] if name == "pays" else None)
           for name in ("borrows", "requests", "pays", "fined", "quiet")}
    with engine.connect() as conn:
        fee_of_payer = conn.execute(select(fees.c.id).where(fees.c.user_id == ids["pays"])).scalar_one()
    now = dt.datetime(2026, 12, 20, 9, 0)

    def circulation_desk():
        desk = other_connection(db_url)
        with desk.begin() as conn:
            conn.execute(insert(loans).values(user_id=ids["borrows"], loan_id="DESK-L1", loan_status="ACTIVE",
                                              loan_date=now, due_date=now + dt.timedelta(days=14)))
            conn.execute(insert(requests).values(user_id=ids["requests"], request_id="DESK-R1",
                                                 request_status="NOT_STARTED", request_type="HOLD"))
            pay(conn, fee_of_payer, "2.00", now=now)
            add_fee(conn, ids["fined"], "3.00", now=now)
        desk.dispose()

    interfere_before_apply(monkeypatch, circulation_desk)
    summary = purge_user_records(as_of=AS_OF, max_owed="10", max_share=1,
                                                            dry_run=False)

    assert summary["purged"] == 1
    assert summary["skipped"] == {"CHANGED_SINCE_SELECTION": 4}
    with engine.connect() as conn:
        kept = set(conn.execute(select(users.c.primary_id).where(users.c.purged_at.is_(None))).scalars())
        assert kept == {"borrows", "requests", "pays", "fined"}
        assert conn.execute(select(loans.c.user_id).where(loans.c.loan_id == "DESK-L1")).scalar() == ids["borrows"]
        assert conn.execute(select(requests.c.user_id).where(requests.c.request_id == "DESK-R1")).scalar() == ids["requests"]
        payer_fee = conn.execute(select(fees.c.balance_minor, fees.c.status).where(fees.c.id == fee_of_payer)).one()
        assert tuple(payer_fee) == (300, "ACTIVE")
        new_fine = conn.execute(select(fees.c.balance_minor, fees.c.status).where(fees.c.user_id == ids["fined"])).one()
        assert tuple(new_fine) == (300, "ACTIVE")
        assert conn.execute(select(fee_transactions.c.type).where(fee_transactions.c.type == "WAIVE")).first() is None
    assert ledger_errors(engine) == []


def test_waive_leaves_alone_users_who_paid_or_were_fined_since_selection(engine, db_url, prefect_api, monkeypatch):
    from flows.waive_fines import bulk_fine_waiving

    ids = {"fined": add_user(engine, "fined", fees_owed=["5.00", "5.00"]),
           "pays": add_user(engine, "pays", fees_owed=["8.00"]),
           "quiet": add_user(engine, "quiet", fees_owed=["4.00"])}
    with engine.connect() as conn:
        fee_of_payer = conn.execute(select(fees.c.id).where(fees.c.user_id == ids["pays"])).scalar_one()

    def circulation_desk():
        desk = other_connection(db_url)
        with desk.begin() as conn:
            add_fee(conn, ids["fined"], "2.00")
            pay(conn, fee_of_payer, "3.00")
        desk.dispose()

    interfere_before_apply(monkeypatch, circulation_desk)
    summary = bulk_fine_waiving(max_fine_threshold="20", waive_reason="AMNESTY",
                                                           as_of=AS_OF, dry_run=False)

    assert (summary["users_waived"], summary["fines_waived"], summary["amount_waived"]) == (1, 1, "4.00")
    assert summary["skipped"] == {"CHANGED_SINCE_SELECTION": 2}
    with engine.connect() as conn:
        open_fees = conn.execute(select(fees.c.user_id, fees.c.balance_minor)
                                 .where(fees.c.status == "ACTIVE").order_by(fees.c.user_id, fees.c.id)).all()
        waived = conn.execute(select(fees.c.user_id).join(fee_transactions, fee_transactions.c.fee_id == fees.c.id)
                              .where(fee_transactions.c.type == "WAIVE")).scalars().all()
    assert [tuple(r) for r in open_fees] == [(ids["fined"], 500), (ids["fined"], 500), (ids["fined"], 200),
                                             (ids["pays"], 500)]
    assert waived == [ids["quiet"]]
    assert ledger_errors(engine) == [] and waived_twice(engine) == []


def test_merge_leaves_alone_a_pair_whose_from_user_changed_and_moves_what_the_desk_added(
        engine, db_url, prefect_api, monkeypatch):
    from flows.merge_users import merge_users

    ids = {name: add_user(engine, name, active_loans=1, fees_owed=["1.00"])
           for name in ("from-staff", "to-staff", "from-borrows", "to-borrows")}

    def circulation_desk():
        desk = other_connection(db_url)
        with desk.begin() as conn:
            # Made a circulation desk operator since selection: no longer a patron-only From user.
            conn.execute(insert(user_roles).values(user_id=ids["from-staff"], role_type="21", scope="MAIN",
                                                   status="ACTIVE"))
            conn.execute(insert(loans).values(user_id=ids["from-borrows"], loan_id="DESK-L2", loan_status="ACTIVE",
                                              loan_date=dt.datetime(2026, 12, 1), due_date=dt.datetime(2026, 12, 29)))
        desk.dispose()

    interfere_before_apply(monkeypatch, circulation_desk)
    merge_users(
        pairs=[{"from_user": "from-staff", "to_user": "to-staff"},
               {"from_user": "from-borrows", "to_user": "to-borrows"}],
        segments=["all"], dry_run=False)

    with engine.connect() as conn:
        left = set(conn.execute(select(users.c.primary_id)).scalars())
        staff_roles = conn.execute(select(user_roles.c.role_type).where(user_roles.c.user_id == ids["from-staff"])).scalars().all()
        desk_loan_owner = conn.execute(select(loans.c.user_id).where(loans.c.loan_id == "DESK-L2")).scalar()
        staff_loans = conn.execute(select(loans.c.user_id).where(loans.c.user_id.in_(
            [ids["from-staff"], ids["to-staff"]]))).scalars().all()
    # The pair whose From user gained a staff role is left exactly as it was, role and all.
    assert "from-staff" in left and sorted(staff_roles) == ["200", "21"]
    assert sorted(staff_loans) == sorted([ids["from-staff"], ids["to-staff"]])
    # The loan the desk added is never lost: it is with the From user (left alone) or moved to the To user.
    assert desk_loan_owner == (ids["from-borrows"] if "from-borrows" in left else ids["to-borrows"])
    assert ledger_errors(engine) == []


# ------------------------------------------------------------------ two real runs of one job


def test_job_lock_refuses_a_second_holder_until_the_first_lets_go(engine, db_url):
    with job_lock(engine, db_url, "purge-user-records"):
        with pytest.raises(JobRefused, match="another real run of purge-user-records is in progress"):
            with job_lock(engine, db_url, "purge-user-records"):
                pass
        with job_lock(engine, db_url, "bulk-fine-waiving"):  # other jobs are not held up
            pass
    with job_lock(engine, db_url, "purge-user-records"):  # released: the next run may start
        pass


def test_a_dry_run_is_not_held_up_by_a_real_run_in_progress(engine, db_url, prefect_api):
    from flows.purge_users import purge_user_records

    add_user(engine, "due", purge_date=PURGE_DATE)
    with job_lock(engine, db_url, "purge-user-records"):
        summary = purge_user_records(as_of=AS_OF, max_share=1)
        assert summary["dry_run"] is True and summary["eligible"] == 1
        with pytest.raises(JobRefused, match="another real run of purge-user-records is in progress"):
            purge_user_records(as_of=AS_OF, max_share=1, dry_run=False)
    with engine.connect() as conn:
        assert conn.execute(select(users.c.purged_at).where(users.c.primary_id == "due")).scalar() is None


def _wait_for(condition: Callable[[], bool], proc, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None and not condition():
        time.sleep(0.01)


def _per_unit_counts(engine, sql: str) -> list[int]:
    with engine.connect() as conn:
        return [int(r[1]) for r in conn.execute(text(sql))]


def test_a_second_real_purge_is_refused_while_one_is_in_progress_even_while_it_awaits_approval(
        demo_library, child_env):
    """The first run pauses for approval holding the lock (deterministic: it stays in progress); the
    second is refused and records nothing; the first is then killed, which frees the lock at once,
    and the next run purges everyone exactly once."""
    from tasks.db.engine import get_engine

    url = demo_library.copy()
    engine = get_engine(url)
    args = ["purge", "--as-of", AS_OF.isoformat(), "--max-share", "1", "--confirm", "--json"]
    first = start_cli([*args, "--require-approval"], child_env(url))

    def awaiting_approval() -> bool:
        with engine.connect() as conn:
            return conn.execute(text("SELECT status FROM job_runs")).scalar() == "AWAITING_APPROVAL"

    _wait_for(awaiting_approval, first)
    assert first.poll() is None, "the first run should be in progress"
    second = start_cli(args, child_env(url))
    out2, err2 = second.communicate(timeout=300)
    assert second.returncode == 1, err2
    assert "another real run of purge-user-records is in progress" in err2 and out2 == ""
    with engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM job_runs")).scalars().all() == ["AWAITING_APPROVAL"]
        assert conn.execute(text("SELECT COUNT(*) FROM users WHERE purged_at IS NOT NULL")).scalar() == 0

    first.kill()
    first.communicate(timeout=60)
    third = start_cli(args, child_env(url))
    out3, err3 = third.communicate(timeout=300)
    assert third.returncode == 0, err3
    with engine.connect() as conn:
        runs = sorted(conn.execute(text("SELECT status FROM job_runs")).scalars().all())
        purged = conn.execute(text("SELECT COUNT(*) FROM users WHERE purged_at IS NOT NULL")).scalar()
    assert runs == ["COMPLETED", "INTERRUPTED"]
    assert purged == json.loads(out3)["purged"] > 0
    assert max(_per_unit_counts(engine, "SELECT user_id, COUNT(*) FROM job_events WHERE event = 'USER_PURGED' "
                                        "GROUP BY user_id")) == 1


def test_two_real_waives_started_at_once_waive_every_fee_once(demo_library, child_env):
    from tasks.db.engine import get_engine

    url = demo_library.copy()
    engine = get_engine(url)
    args = ["waive", "--as-of", AS_OF.isoformat(), "--max-fine-threshold", "40", "--reason", "AMNESTY",
            "--batch-size", "10", "--confirm", "--json"]
    runs = [start_cli(args, child_env(url)) for _ in range(2)]
    results = [(p.communicate(timeout=300), p.returncode) for p in runs]

    codes = sorted(code for _, code in results)
    assert codes in ([0, 1], [0, 0]), results
    for (out, err), code in results:
        if code == 1:
            assert "another real run of bulk-fine-waiving is in progress" in err
    assert waived_twice(engine) == [] and ledger_errors(engine) == []
    waived = sum(json.loads(out)["fines_waived"] for (out, _), code in results if code == 0)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM fee_transactions WHERE reason = 'AMNESTY'")).scalar() == waived > 0


# ------------------------------------------------------------------ a payment in the middle of a batch


def desk_payment(url: str, fee_id: int, amount_minor: int) -> bool:
    """How a careful desk takes a payment: only from an open fee that still owes at least that much.
    Returns whether it was taken."""
    desk = create_engine(url)
    try:
        with desk.begin() as conn:
            taken = conn.execute(text(
                "UPDATE fees SET balance_minor = balance_minor - :amount WHERE id = :fee "
                "AND status = 'ACTIVE' AND balance_minor >= :amount"), {"fee": fee_id, "amount": amount_minor}).rowcount
            if taken:
                conn.execute(insert(fee_transactions).values(fee_id=fee_id, type="PAYMENT", amount_minor=amount_minor,
                                                             transaction_time=dt.datetime(2026, 12, 20, 10)))
            return bool(taken)
    finally:
        desk.dispose()


def test_a_payment_taken_while_a_purge_batch_waives_the_fee_never_unbalances_the_ledger(
        engine, db_url, prefect_api, monkeypatch):
    """The desk takes a payment on a fee between the batch's WAIVE transactions and its closing of the
    fee. The batch must hold the fee locked, so the payment waits and then finds the fee closed;
    otherwise the fee would be waived in full *and* paid."""
    import threading

    import flows.purge_users
    import tasks.purge.steps

    user = add_user(engine, "leaving", purge_date=PURGE_DATE, fees_owed=["6.00"])
    with engine.connect() as conn:
        fee_id = conn.execute(select(fees.c.id).where(fees.c.user_id == user)).scalar_one()
    real_sql_for = tasks.purge.steps.sql_for
    desk: dict[str, object] = {}

    def sql_for(conn, name):
        if name == "purge/close_active_fees" and "thread" not in desk:
            desk["thread"] = threading.Thread(target=lambda: desk.update(taken=desk_payment(db_url, fee_id, 200)))
            desk["thread"].start()
            desk["thread"].join(timeout=3)  # a locked fee makes the desk wait for the batch to commit
        return real_sql_for(conn, name)

    monkeypatch.setattr(tasks.purge.steps, "sql_for", sql_for)
    summary = flows.purge_users.purge_user_records(
        as_of=AS_OF, max_owed="10", max_share=1, dry_run=False)
    desk["thread"].join(timeout=60)

    assert summary["purged"] == 1 and summary["amount_waived"] == "6.00"
    assert desk["taken"] is False  # the fee was closed by the time the desk got to it
    assert ledger_errors(engine) == []
    with engine.connect() as conn:
        kinds = conn.execute(select(fee_transactions.c.type, fee_transactions.c.amount_minor)
                             .where(fee_transactions.c.fee_id == fee_id)).all()
    assert [tuple(k) for k in kinds] == [("WAIVE", 600)]


def during_waive_batch(monkeypatch, statement: str, desk_action: Callable[[], object]) -> dict[str, object]:
    """Run `desk_action` on another connection just before the waive batch runs `statement`, and give it
    3 s: a desk that must wait for the batch's locks is still waiting when the batch goes on."""
    import threading

    import tasks.waive.steps

    real_sql_for = tasks.waive.steps.sql_for
    desk: dict[str, object] = {}

    def sql_for(conn, name):
        if name == statement and "thread" not in desk:
            desk["thread"] = threading.Thread(target=lambda: desk.update(result=desk_action(),
                                                                         at=time.monotonic()))
            desk["thread"].start()
            desk["thread"].join(timeout=3)
            desk["batch_went_on"] = time.monotonic()
        return real_sql_for(conn, name)

    monkeypatch.setattr(tasks.waive.steps, "sql_for", sql_for)
    return desk


def test_a_payment_taken_while_a_waive_batch_waives_the_fee_never_unbalances_the_ledger(
        engine, db_url, prefect_api, monkeypatch):
    """As for purge: the waive batch holds the fee locked between its WAIVE transaction and its closing
    of the fee, so a payment waits and then finds the fee closed."""
    from flows.waive_fines import bulk_fine_waiving

    user = add_user(engine, "amnesty", fees_owed=["6.00"])
    with engine.connect() as conn:
        fee_id = conn.execute(select(fees.c.id).where(fees.c.user_id == user)).scalar_one()
    desk = during_waive_batch(monkeypatch, "waive/close_fees", lambda: desk_payment(db_url, fee_id, 200))
    summary = bulk_fine_waiving(max_fine_threshold="10", waive_reason="AMNESTY",
                                                           as_of=AS_OF, dry_run=False)
    desk["thread"].join(timeout=60)

    assert (summary["fines_waived"], summary["amount_waived"]) == (1, "6.00")
    assert desk["result"] is False and desk["at"] > desk["batch_went_on"]  # it waited, then found it closed
    assert ledger_errors(engine) == [] and waived_twice(engine) == []
    with engine.connect() as conn:
        kinds = conn.execute(select(fee_transactions.c.type, fee_transactions.c.amount_minor)
                             .where(fee_transactions.c.fee_id == fee_id)).all()
    assert [tuple(k) for k in kinds] == [("WAIVE", 600)]


def test_a_fine_charged_while_a_waive_batch_commits_comes_after_it_and_stays_active(
        engine, db_url, prefect_api, monkeypatch):
    """The waive batch locks fees, not users: on PostgreSQL a fine charged to one of its users while it
    writes does not wait for it. The fine was not there when the batch re-read the user's total, so it is
    simply later than the waive: the user's old fees are waived, the new fine stays active."""
    from flows.waive_fines import bulk_fine_waiving

    user = add_user(engine, "amnesty", fees_owed=["6.00"])
    desk_engine = other_connection(db_url)

    def charge_fine() -> int:
        with desk_engine.begin() as conn:
            return add_fee(conn, user, "9.00")

    desk = during_waive_batch(monkeypatch, "waive/insert_waive_transactions", charge_fine)
    summary = bulk_fine_waiving(max_fine_threshold="10", waive_reason="AMNESTY",
                                                           as_of=AS_OF, dry_run=False)
    desk["thread"].join(timeout=60)
    desk_engine.dispose()

    assert (summary["fines_waived"], summary["amount_waived"]) == (1, "6.00")
    if db_url.startswith("postgresql"):  # SQLite has one writer: the desk waits for the batch there
        assert desk["at"] < desk["batch_went_on"]
    with engine.connect() as conn:
        active = conn.execute(select(fees.c.id, fees.c.balance_minor)
                              .where(fees.c.user_id == user, fees.c.status == "ACTIVE")).all()
    assert [tuple(r) for r in active] == [(desk["result"], 900)]
    assert ledger_errors(engine) == [] and waived_twice(engine) == []


def test_purge_batches_that_share_proxy_rows_do_not_deadlock(engine, db_url, monkeypatch):
    """Two users purged in batches running at once, each a proxy for the other: both batches delete
    both proxy rows. Deleted kind by kind (the users' own rows, then the rows naming them), the rows were
    locked in opposite orders and the batches deadlocked (PostgreSQL's log at 1,000,000 users; none
    since policy/delete_proxies locks them in id order in one statement). Both batches are held just
    before they delete proxies and let go together: the second waits for the first, and both commit."""
    import threading

    import pandas as pd

    import tasks.library.policy
    from flows.purge_users import PURGE
    from tasks.db.engine import write_transaction
    from tasks.db.schema import user_proxies

    alpha = add_user(engine, "alpha", purge_date=PURGE_DATE)
    beta = add_user(engine, "beta", purge_date=PURGE_DATE)
    with engine.begin() as conn:
        conn.execute(insert(user_proxies), [{"user_id": alpha, "proxy_for_primary_id": "beta"},
                                            {"user_id": beta, "proxy_for_primary_id": "alpha"}])
    real_delete_proxy_rows = tasks.library.policy.delete_proxy_rows
    arrived = {alpha: threading.Event(), beta: threading.Event()}
    batch = threading.local()
    errors: list[BaseException] = []

    def delete_proxy_rows():
        arrived[batch.user].set()
        arrived[batch.other].wait(timeout=3)  # SQLite's second batch is still waiting to begin
        return real_delete_proxy_rows()

    monkeypatch.setattr(tasks.library.policy, "delete_proxy_rows", delete_proxy_rows)

    def purge_batch_of(user: int, other: int) -> None:
        batch.user, batch.other = user, other
        try:
            with write_transaction(engine) as conn:
                PURGE.lock(conn, pd.DataFrame({"user_id": [user]}))
                tasks.library.policy.apply_policy(conn, "keep-statistics-remove-id", [user],
                                          purged_at=dt.datetime(2026, 12, 20, 12))
        except BaseException as exc:  # noqa: BLE001 - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=purge_batch_of, args=pair) for pair in ((alpha, beta), (beta, alpha))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    with engine.connect() as conn:
        assert conn.execute(select(user_proxies.c.id)).all() == []
        assert conn.execute(select(users.c.primary_id, users.c.purge_policy).where(users.c.id.in_([alpha, beta]))
                            ).all() == [(None, "keep-statistics-remove-id")] * 2
