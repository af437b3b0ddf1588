"""Bulk Fine Waiving end to end on SQLite and PostgreSQL: the CLI, the flow, the ledger, the records."""
from __future__ import annotations

import contextlib
import datetime as dt
import json

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import OperationalError

import tasks.waive.steps
import tasks.engine.batches
from flows.waive_fines import bulk_fine_waiving
from tasks.engine.parameters import run_date_and_time
from tasks.db.schema import fee_transactions, fees, job_events, job_runs, users
from tests.builders import add_fee, add_user, ledger_errors, pay

AS_OF = dt.date(2026, 12, 20)


def fee_state(engine) -> list[tuple]:
    """Everything a waive may change: fees, their transactions, job events."""
    with engine.connect() as conn:
        return [
            conn.execute(select(fees.c.fee_id, fees.c.status, fees.c.balance_minor).order_by(fees.c.id)).all(),
            conn.execute(select(fee_transactions).order_by(fee_transactions.c.id)).all(),
            conn.execute(select(func.count()).select_from(job_events)).scalar(),
        ]


def fees_of(engine, primary_id: str) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(select(fees.c.fee_type, fees.c.status, fees.c.balance_minor)
                            .join(users, users.c.id == fees.c.user_id)
                            .where(users.c.primary_id == primary_id).order_by(fees.c.id)).all()


def waive_transactions(engine, run_id: str | None = None) -> list:
    query = select(fee_transactions).where(fee_transactions.c.type == "WAIVE")
    if run_id:
        query = query.where(fee_transactions.c.job_run_id == run_id)
    with engine.connect() as conn:
        return conn.execute(query.order_by(fee_transactions.c.id)).all()


def counts(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in {"run_id", "dry_run", "parameters"}}


def test_dry_run_real_run_and_rerun(engine, cli):
    add_user(engine, "owes-130", fees_owed=["10.00", "50.00", "70.00"])          # above 120: keeps all three
    add_user(engine, "owes-120", fees_owed=["49.99", "70.01"], fee_types=["OVERDUEFINE", "DAMAGEDITEMFINE"])
    add_user(engine, "overdue", fees_owed=["5.25"], overdue_loans=1)
    add_user(engine, "borrowing", fees_owed=["0.01"], active_loans=1)          # loans not yet due
    add_user(engine, "protected", fees_owed=["1.00"], protected=True)
    add_user(engine, "paid-up", closed_fees=2)
    partly_paid = add_user(engine, "partly-paid")
    with engine.begin() as conn:
        add_fee(conn, partly_paid, "2.50", original="10.00", fee_type="OTHER")
    assert ledger_errors(engine) == []
    before = fee_state(engine)
    args = ["waive", "--max-fine-threshold", "120", "--reason", "AMNESTY", "--comment", "winter amnesty",
            "--exclude-overdue", "--as-of", AS_OF.isoformat(), "--json"]

    code, out, err = cli(*args)
    assert code == 0, err
    dry = json.loads(out)
    assert fee_state(engine) == before, "a dry run changes nothing"
    assert dry["job"] == "bulk-fine-waiving" and dry["dry_run"] is True and dry["as_of"] == "2026-12-20"
    assert dry["parameters"]["max_fine_threshold"] == "120.00"
    assert dry["parameters"]["waive_reason"] == "AMNESTY"
    assert dry["skipped"] == {"ABOVE_FINE_THRESHOLD": 1, "HAS_OVERDUE_LOANS": 1, "PROTECTED": 1}
    assert (dry["users_considered"], dry["users_eligible"], dry["users_waived"], dry["fines_waived"]) == (6, 3, 3, 4)
    assert dry["amount_waived"] == "122.51"
    assert dry["amount_waived_by_type"] == {"DAMAGEDITEMFINE": "70.01", "OTHER": "2.50", "OVERDUEFINE": "50.00"}

    _, earliest = run_date_and_time(AS_OF)
    code, out, err = cli(*args, "--confirm")
    _, latest = run_date_and_time(AS_OF)
    assert code == 0, err
    real = json.loads(out)
    assert real["dry_run"] is False
    assert counts(real) == counts(dry), "a dry run reports exactly what the real run does"

    assert fees_of(engine, "owes-130") == [("OVERDUEFINE", "ACTIVE", 1000), ("OVERDUEFINE", "ACTIVE", 5000),
                                           ("OVERDUEFINE", "ACTIVE", 7000)]
    assert fees_of(engine, "owes-120") == [("OVERDUEFINE", "CLOSED", 0), ("DAMAGEDITEMFINE", "CLOSED", 0)]
    assert fees_of(engine, "overdue") == [("OVERDUEFINE", "ACTIVE", 525)]
    assert fees_of(engine, "protected") == [("OVERDUEFINE", "ACTIVE", 100)]
    assert fees_of(engine, "borrowing") == [("OVERDUEFINE", "CLOSED", 0)]
    assert fees_of(engine, "partly-paid") == [("OTHER", "CLOSED", 0)]
    assert ledger_errors(engine) == []

    waived = waive_transactions(engine)
    assert sorted(t.amount_minor for t in waived) == [1, 250, 4999, 7001]
    assert {(t.reason, t.comment, t.job_run_id) for t in waived} == {("AMNESTY", "winter amnesty", real["run_id"])}
    assert all(earliest <= t.transaction_time <= latest for t in waived), "the transaction time is the run time"

    with engine.connect() as conn:
        run = conn.execute(select(job_runs).where(job_runs.c.run_id == real["run_id"])).one()
        events = conn.execute(select(job_events.c.event, job_events.c.fee_id, job_events.c.amount_minor)
                              .where(job_events.c.run_id == real["run_id"])).all()
        described = conn.execute(select(job_events.c.user_id, job_events.c.details, fees.c.user_id, fees.c.fee_type)
                                 .join(fees, fees.c.id == job_events.c.fee_id)
                                 .where(job_events.c.run_id == real["run_id"])).all()
    assert run.status == "COMPLETED" and run.job == "bulk-fine-waiving" and not run.dry_run
    assert json.loads(run.summary)["amount_waived"] == "122.51"
    assert "| DAMAGEDITEMFINE | 70.01 EUR |" in run.report and "| OVERDUEFINE | 50.00 EUR |" in run.report
    assert "| ABOVE_FINE_THRESHOLD | 1 |" in run.report and "Duration" in run.report
    assert sorted((e.event, e.fee_id, e.amount_minor) for e in events) == sorted(
        ("FEE_WAIVED", t.fee_id, t.amount_minor) for t in waived)
    # Each audit row names the fee's user, its type and the reason, as JSON.
    assert len(described) == 4 and all(
        event_user == fee_user and json.loads(details) == {"fee_type": fee_type, "reason": "AMNESTY"}
        for event_user, details, fee_user, fee_type in described)

    after_first = fee_state(engine)
    code, out, err = cli(*args, "--confirm")
    assert code == 0, err
    again = json.loads(out)
    assert (again["users_waived"], again["fines_waived"], again["amount_waived"]) == (0, 0, "0.00")
    assert fee_state(engine)[:2] == after_first[:2], "nothing is waived twice"
    assert ledger_errors(engine) == []


def test_fine_type_date_and_group_limits(engine, prefect_api):
    nov = dt.datetime(2026, 11, 20, 12, 0)
    mixed, big_other, old = add_user(engine, "mixed"), add_user(engine, "big-other"), add_user(engine, "old-fee")
    grad = add_user(engine, "grad", user_group="GRAD")
    with engine.begin() as conn:
        add_fee(conn, mixed, "10.00", fee_type="OVERDUEFINE", now=nov)
        add_fee(conn, mixed, "20.00", fee_type="LOSTITEMREPLACEMENTFEE", now=nov)
        add_fee(conn, big_other, "10.00", fee_type="OVERDUEFINE", now=nov)  # 10 in scope, but 60 owed in all
        add_fee(conn, big_other, "50.00", fee_type="LOSTITEMREPLACEMENTFEE", now=nov)
        add_fee(conn, old, "10.00", fee_type="OVERDUEFINE", now=dt.datetime(2026, 10, 1))
        add_fee(conn, grad, "10.00", fee_type="OVERDUEFINE", now=nov)
    summary = bulk_fine_waiving(
        max_fine_threshold="55", waive_reason="GOODWILL", fine_types=["OVERDUEFINE"], user_groups=["UNDERGRAD"],
        created_from=dt.date(2026, 11, 1), created_to=dt.date(2026, 11, 10), as_of=AS_OF, dry_run=False)
    # add_fee creates a fee ten days before `now`: 10 Nov is the last day of the range.
    assert summary["skipped"] == {"ABOVE_FINE_THRESHOLD": 1}
    assert (summary["users_considered"], summary["users_waived"], summary["fines_waived"]) == (2, 1, 1)
    assert summary["amount_waived_by_type"] == {"OVERDUEFINE": "10.00"}
    assert fees_of(engine, "mixed") == [("OVERDUEFINE", "CLOSED", 0), ("LOSTITEMREPLACEMENTFEE", "ACTIVE", 2000)]
    assert fees_of(engine, "big-other") == [("OVERDUEFINE", "ACTIVE", 1000), ("LOSTITEMREPLACEMENTFEE", "ACTIVE", 5000)]
    assert fees_of(engine, "old-fee") == [("OVERDUEFINE", "ACTIVE", 1000)]
    assert fees_of(engine, "grad") == [("OVERDUEFINE", "ACTIVE", 1000)]
    assert ledger_errors(engine) == []


def test_fees_paid_or_changed_after_selection_are_left_alone(engine, prefect_api, monkeypatch):
    partly, fully = add_user(engine, "pays-part"), add_user(engine, "pays-all")
    with engine.begin() as conn:
        partly_fee = add_fee(conn, partly, "8.00")
        add_fee(conn, partly, "2.00")
        fully_fee = add_fee(conn, fully, "3.00")
        add_fee(conn, fully, "4.00")
    add_user(engine, "untouched", fees_owed=["1.50"])
    real_transaction = tasks.engine.batches.write_transaction

    @contextlib.contextmanager
    def pay_at_the_desk_first(*a, **kw):
        # Between selection and the batch: two patrons pay at the circulation desk.
        with engine.begin() as conn:
            pay(conn, partly_fee, "1.00")
            pay(conn, fully_fee, "3.00")
        monkeypatch.setattr(tasks.engine.batches, "write_transaction", real_transaction)
        with real_transaction(*a, **kw) as conn:
            yield conn

    monkeypatch.setattr(tasks.engine.batches, "write_transaction", pay_at_the_desk_first)
    summary = bulk_fine_waiving(
        max_fine_threshold="100", waive_reason="AMNESTY", as_of=AS_OF, dry_run=False)
    assert summary["skipped"] == {"CHANGED_SINCE_SELECTION": 2}
    assert (summary["users_eligible"], summary["users_waived"], summary["fines_waived"]) == (3, 1, 1)
    assert summary["amount_waived"] == "1.50"
    assert fees_of(engine, "pays-part") == [("OVERDUEFINE", "ACTIVE", 700), ("OVERDUEFINE", "ACTIVE", 200)]
    assert fees_of(engine, "pays-all") == [("OVERDUEFINE", "CLOSED", 0), ("OVERDUEFINE", "ACTIVE", 400)]
    assert fees_of(engine, "untouched") == [("OVERDUEFINE", "CLOSED", 0)]
    assert [t.amount_minor for t in waive_transactions(engine)] == [150]
    assert ledger_errors(engine) == []


def test_unknown_codes_are_refused_listing_the_valid_ones_until_an_administrator_adds_them(engine, cli):
    add_user(engine, "a", fees_owed=["1.00"], fee_type="LIBCARD")
    before = fee_state(engine)
    base = ["waive", "--max-fine-threshold", "5", "--confirm", "--as-of", AS_OF.isoformat()]
    for flags, named, listed in [
        (["--reason", "BIRTHDAY"], "'BIRTHDAY'", "AMNESTY, ERROR, GOODWILL"),
        (["--reason", "AMNESTY", "--fine-type", "OVERDUEFINE", "--fine-type", "PARKING"], "'PARKING'",
         "OVERDUEFINE"),
        (["--reason", "AMNESTY", "--user-group", "VISITOR"], "'VISITOR'", "UNDERGRAD"),
    ]:
        code, out, err = cli(*base, *flags)
        assert code == 2, (flags, out, err)
        assert named in err and listed in err, err
        assert "OVERDUEFINE" not in named and "valid" in err
    assert fee_state(engine) == before
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(job_runs)).scalar() == 0

    # The loader adds codes it meets; here the fee was inserted directly, so LIBCARD is unknown too.
    code, _, err = cli(*base, "--reason", "CAMPAIGN", "--fine-type", "LIBCARD")
    assert code == 2 and "'CAMPAIGN'" in err
    assert cli("codes", "add", "waive-reason", "CAMPAIGN", "Library card campaign")[0] == 0
    assert cli("codes", "add", "fee-type", "LIBCARD", "Library card fee")[0] == 0
    code, out, err = cli(*base, "--reason", "CAMPAIGN", "--fine-type", "LIBCARD", "--json")
    assert code == 0, err
    assert json.loads(out)["amount_waived_by_type"] == {"LIBCARD": "1.00"}
    assert [(t.reason, t.amount_minor) for t in waive_transactions(engine)] == [("CAMPAIGN", 100)]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_bad_parameters_exit_2_naming_the_value(engine, cli):
    add_user(engine, "a", fees_owed=["1.00"])
    before = fee_state(engine)
    for flags, flag, expected in [
        (["--max-fine-threshold", "0"], "--max-fine-threshold", "more than 0"),
        (["--max-fine-threshold", "-5"], "--max-fine-threshold", "more than 0"),
        (["--max-fine-threshold", "abc"], "--max-fine-threshold", "'abc'"),
        (["--max-fine-threshold", "1.005"], "--max-fine-threshold", "at most 2 decimals"),
        (["--max-fine-threshold", "5", "--created-from", "2026-12-01", "--created-to", "2026-11-01"],
         "--created-to", "ends before it starts"),
        (["--max-fine-threshold", "5", "--created-from", "1 Dec"], "--created-from", "YYYY-MM-DD"),
        (["--max-fine-threshold", "5", "--batch-size", "0"], "--batch-size", "at least 1"),
    ]:
        code, out, err = cli("waive", "--reason", "AMNESTY", "--confirm", *flags)
        assert code == 2, (flags, out, err)
        assert flag in err and expected in err, (flags, err)
    code, _, err = cli("waive", "--reason", "AMNESTY")
    assert code == 2 and "--max-fine-threshold" in err
    assert fee_state(engine) == before


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_payment_during_the_batch_waits_for_it(engine, prefect_api, monkeypatch):
    """PostgreSQL runs a payment concurrently with a batch: the batch locks the fees it re-checks, so the
    payment cannot slip in between the re-check and the waive."""
    user = add_user(engine, "at-the-desk")
    with engine.begin() as conn:
        fee = add_fee(conn, user, "6.00")
    blocked = []

    real_lock = tasks.waive.steps.lock_active_fees

    def lock_then_try_to_pay(conn, user_ids):
        real_lock(conn, user_ids)
        with engine.connect() as desk:
            desk.execute(text("SET lock_timeout = '300ms'"))
            with pytest.raises(OperationalError, match="lock"):
                desk.execute(update(fees).where(fees.c.id == fee).values(balance_minor=fees.c.balance_minor - 100))
            desk.rollback()
        blocked.append(fee)

    monkeypatch.setattr(tasks.waive.steps, "lock_active_fees", lock_then_try_to_pay)
    summary = bulk_fine_waiving(
        max_fine_threshold="10", waive_reason="AMNESTY", as_of=AS_OF, dry_run=False)
    assert blocked == [fee]
    assert summary["fines_waived"] == 1 and fees_of(engine, "at-the-desk") == [("OVERDUEFINE", "CLOSED", 0)]
    assert ledger_errors(engine) == []


def test_a_run_from_the_prefect_ui_with_an_unknown_reason_fails_before_recording_anything(engine, prefect_api):
    """The CLI checks codes before it starts the flow; a deployment run reaches the flow's own check."""
    from tasks.errors import InvalidInput

    add_user(engine, "owes", fees_owed=["5.00"])
    with pytest.raises(InvalidInput, match="unknown waive reason 'NOPE'.*AMNESTY"):
        bulk_fine_waiving(max_fine_threshold="10", waive_reason="NOPE", dry_run=False)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(job_runs)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(fee_transactions)).scalar() == 0
