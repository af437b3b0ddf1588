"""Purge User Records end to end, on SQLite and PostgreSQL: the flow, the CLI, the database it leaves
behind, the audit trail and the report."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, insert, select, update

import tasks.engine.runner
from flows.purge_users import purge_user_records
from tasks.db.engine import write_transaction
from tasks.db.schema import (fee_transactions, fees, job_events, job_runs, loans, requests, user_addresses,
                          user_attachments, user_blocks, user_emails, user_identifiers, user_notes, user_phones,
                          user_proxies, user_roles, user_statistics, users)
from tests.builders import add_fee, add_user, ledger_errors
from tests.runs import run_flow

AS_OF = dt.date(2026, 12, 20)
LONG_AGO = dt.date(2026, 1, 15)
SEGMENTS = {"user_identifiers": user_identifiers, "user_addresses": user_addresses, "user_emails": user_emails,
            "user_phones": user_phones, "user_notes": user_notes, "user_attachments": user_attachments,
            "user_roles": user_roles, "user_blocks": user_blocks, "user_proxies": user_proxies}


def purge(**values) -> dict:
    return purge_user_records(as_of=AS_OF, **values)


def user_row(engine, user_id: int) -> dict | None:
    with engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.id == user_id)).mappings().first()
    return dict(row) if row else None


def purged_ids(engine) -> set[str | int]:
    with engine.connect() as conn:
        return set(conn.execute(select(users.c.id).where(users.c.purged_at.is_not(None))).scalars())


def library_snapshot(engine) -> dict:
    """Everything a purge could change, to compare before and after a run that must change nothing."""
    with engine.connect() as conn:
        return {
            "users": conn.execute(select(users).order_by(users.c.id)).all(),
            "fees": conn.execute(select(fees).order_by(fees.c.id)).all(),
            "transactions": conn.execute(select(fee_transactions).order_by(fee_transactions.c.id)).all(),
            **{name: conn.execute(select(func.count()).select_from(t)).scalar() for name, t in SEGMENTS.items()},
            "events": conn.execute(select(func.count()).select_from(job_events)).scalar(),
        }


def counts_only(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in {"run_id", "dry_run", "parameters"}}


def read_report_artifacts(flow_run_id: str) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["purge-user-records-report"]),
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return [a.data for a in artifacts]


def test_purge_rules_dry_run_real_run_and_rerun(engine, cli):
    ids = {
        # 20 Dec with 10 days' grace: purge dates up to 9 Dec are purged.
        "owes-at-max": add_user(engine, "owes-at-max", purge_date=dt.date(2026, 12, 8), fees_owed=["2.50", "1.00"],
                                closed_fees=1, history_loans=2, history_requests=1),
        "edge": add_user(engine, "edge", purge_date=dt.date(2026, 12, 9)),
        "not-due": add_user(engine, "not-due", purge_date=dt.date(2026, 12, 10)),
        "no-date": add_user(engine, "no-date", purge_date=None),
        "owes-a-cent-more": add_user(engine, "owes-a-cent-more", purge_date=LONG_AGO, fees_owed=["3.51"]),
        "borrowing": add_user(engine, "borrowing", purge_date=LONG_AGO, active_loans=1),
        "overdue": add_user(engine, "overdue", purge_date=LONG_AGO, overdue_loans=1),
        "requesting": add_user(engine, "requesting", purge_date=LONG_AGO, active_requests=1),
        "protected": add_user(engine, "protected", purge_date=LONG_AGO, protected=True),
        "protected-no-date": add_user(engine, "protected-no-date", purge_date=None, protected=True),
    }
    before = library_snapshot(engine)
    expected = {"job": "purge-user-records", "as_of": "2026-12-20",
                "skipped": {"ACTIVE_LOANS": 2, "ACTIVE_REQUESTS": 1, "OWES_ABOVE_THRESHOLD": 1, "PROTECTED": 1},
                "eligible": 2, "purged": 2, "fines_waived": 2, "amount_waived": "3.50"}

    dry = purge(grace_period_days=10, max_owed="3.50")
    assert dry["dry_run"] is True
    assert counts_only(dry) == expected
    assert library_snapshot(engine) == before

    code, out, err = cli("purge", "--as-of", "2026-12-20", "--grace-period-days", "10", "--max-owed", "3.50",
                         "--batch-size", "1", "--confirm", "--json")
    assert code == 0, err
    real = json.loads(out)
    assert real["dry_run"] is False and real["parameters"]["max_owed"] == "3.50"
    assert counts_only(real) == counts_only(dry)
    assert purged_ids(engine) == {ids["owes-at-max"], ids["edge"]}
    for kept in set(ids) - {"owes-at-max", "edge"}:
        assert user_row(engine, ids[kept])["primary_id"] == kept

    # The fees were waived before the user went: WAIVE for each whole balance, and the ledger balances.
    with engine.connect() as conn:
        waives = conn.execute(
            select(fees.c.fee_id, fee_transactions.c.amount_minor, fee_transactions.c.job_run_id)
            .join(fees, fees.c.id == fee_transactions.c.fee_id)
            .where(fee_transactions.c.type == "WAIVE", fee_transactions.c.reason == "USER_PURGED")).all()
        left = conn.execute(select(fees.c.status, fees.c.balance_minor)
                            .where(fees.c.user_id == ids["owes-at-max"])).all()
        owing = conn.execute(select(fees.c.status, fees.c.balance_minor)
                             .where(fees.c.user_id == ids["owes-a-cent-more"])).all()
    assert sorted(w.amount_minor for w in waives) == [100, 250]
    assert {w.job_run_id for w in waives} == {real["run_id"]}
    assert sorted(left) == [("CLOSED", 0)] * 3
    assert owing == [("ACTIVE", 351)]
    assert ledger_errors(engine) == []

    # The audit trail: one job run per run, and what happened to whom.
    with engine.connect() as conn:
        run = conn.execute(select(job_runs).where(job_runs.c.run_id == real["run_id"])).mappings().one()
        events = conn.execute(select(job_events.c.event, job_events.c.user_id, job_events.c.amount_minor)
                              .where(job_events.c.run_id == real["run_id"])).all()
        dry_events = conn.execute(select(func.count()).select_from(job_events)
                                  .where(job_events.c.run_id == dry["run_id"])).scalar()
    assert (run["job"], run["status"], run["dry_run"]) == ("purge-user-records", "COMPLETED", False)
    assert json.loads(run["summary"]) == real and json.loads(run["parameters"])["grace_period_days"] == 10
    assert sorted(events) == sorted([("USER_PURGED", ids["owes-at-max"], None), ("USER_PURGED", ids["edge"], None),
                                     ("FEES_WAIVED", ids["owes-at-max"], 350)])
    assert dry_events == 0

    # The report: run date, parameters, counts, throughput, and who was skipped and why; the real run
    # names nobody it purged. The same text is the Prefect artifact.
    report = run["report"]
    assert "2026-12-20" in report and "| Grace period (days) | 10 |" in report
    assert "| Users eligible | 2 |" in report and "| Amount waived | 3.50 EUR |" in report
    assert "| OWES_ABOVE_THRESHOLD | 1 |" in report and "users/s" in report
    assert "| requesting | ACTIVE_REQUESTS |" in report and "| protected | PROTECTED |" in report
    assert "| edge |" not in report and "| owes-at-max |" not in report
    assert read_report_artifacts(run["flow_run_id"]) == [report]
    code, out, _ = cli("purge", "--as-of", "2026-12-20", "--grace-period-days", "10", "--max-owed", "3.50")
    assert code == 0 and out.startswith("# Purge User Records: dry run") and "| Users purged | 0 |" in out

    # A rerun finds nothing more to purge and skips the same users for the same reasons.
    after_real = library_snapshot(engine)
    rerun = purge(grace_period_days=10, max_owed="3.50", dry_run=False)
    assert counts_only(rerun) == {**expected, "eligible": 0, "purged": 0, "fines_waived": 0, "amount_waived": "0.00"}
    assert library_snapshot(engine) == after_real


def test_record_type_and_user_group_limits(engine, cli):
    ids = {name: add_user(engine, name, purge_date=LONG_AGO, record_type=rtype, user_group=group)
           for name, rtype, group in [("staff-grad", "STAFF", "GRAD"), ("staff-alumni", "STAFF", "ALUMNI"),
                                      ("public-grad", "PUBLIC", "GRAD"), ("contact-grad", "CONTACT", "GRAD"),
                                      ("contact-faculty", "CONTACT", "FACULTY")]}
    code, out, err = cli("purge", "--as-of", "2026-12-20", "--record-type", "STAFF", "--record-type", "CONTACT",
                         "--user-group", "GRAD", "--confirm", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["purged"], summary["skipped"]) == (2, {})
    assert summary["parameters"]["record_types"] == ["STAFF", "CONTACT"]
    assert purged_ids(engine) == {ids["staff-grad"], ids["contact-grad"]}


@pytest.mark.parametrize("args, names", [
    (["--grace-period-days", "-1"], ["--grace-period-days", "-1"]),
    (["--max-owed", "abc"], ["--max-owed", "abc"]),
    (["--max-owed", "1.005"], ["--max-owed", "1.005"]),
    (["--as-of", "2026-13-01"], ["--as-of", "2026-13-01"]),
    (["--batch-size", "0"], ["--batch-size", "0"]),
    (["--max-share", "2"], ["--max-share", "2"]),
    (["--record-type", "PATRON"], ["'PATRON'", "CONTACT, PUBLIC, STAFF"]),
    (["--user-group", "NOPE", "--user-group", "GRAD"], ["'NOPE'", "ALUMNI", "UNDERGRAD"]),
])
def test_bad_input_exits_2_names_the_value_and_changes_nothing(engine, cli, args, names):
    add_user(engine, "due", purge_date=LONG_AGO)
    before = library_snapshot(engine)
    code, out, err = cli("purge", "--confirm", *args)
    assert code == 2, (out, err)
    assert all(name in err for name in names), err
    assert library_snapshot(engine) == before
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(job_runs)).scalar() == 0


def test_blast_radius_guard_refuses_before_changing_anything(engine, cli):
    for n in range(4):
        add_user(engine, f"due-{n}", purge_date=LONG_AGO)
    for n in range(4):
        add_user(engine, f"live-{n}", purge_date=None)
    before = library_snapshot(engine)

    code, out, err = cli("purge", "--as-of", "2026-12-20", "--max-users", "3", "--confirm")
    assert code == 1
    # The limit by its name on the command line, never the internal field name (max_users).
    assert "would purge 4 users, more than --max-users (3) allows; nothing was changed" in err
    code, out, err = cli("purge", "--as-of", "2026-12-20", "--max-share", "0.49", "--confirm")
    assert code == 1
    assert "would purge 4 of 8 users (50.0%), more than --max-share (0.49) allows" in err
    # From the form (the flow run as a worker runs it), by the field's title.
    state, _ = run_flow(purge_user_records, as_of="2026-12-20", max_users=3, dry_run=False)
    assert (state.name, state.message.split(";")[0]) == (
        "Refused", "this run would purge 4 users, more than Most users per run (3) allows")
    assert library_snapshot(engine) == before
    with engine.connect() as conn:
        statuses = conn.execute(select(job_runs.c.status, job_runs.c.report)).all()
    assert [s.status for s in statuses] == ["REFUSED", "REFUSED", "REFUSED"]
    assert "max_" not in "".join(s.report for s in statuses)

    # Exactly at both limits is allowed.
    code, out, err = cli("purge", "--as-of", "2026-12-20", "--max-users", "4", "--max-share", "0.5", "--confirm",
                         "--json")
    assert code == 0, err
    assert json.loads(out)["purged"] == 4


def add_full_user(engine, primary_id: str) -> int:
    """A user with something in every segment, history, a fee ledger with comments, and a proxy both ways."""
    user_id = add_user(engine, primary_id, purge_date=LONG_AGO, first_name="Grace", last_name="Hopper",
                       middle_name="Brewster", external_id="SIS-1", expiry_date=dt.date(2026, 1, 1),
                       user_group="GRAD", record_type="PUBLIC", fees_owed=["1.25"], closed_fees=1,
                       history_loans=2, history_requests=1)
    friend = add_user(engine, f"friend-of-{primary_id}", purge_date=None)
    with write_transaction(engine) as conn:
        conn.execute(insert(user_emails).values(user_id=user_id, email_address="grace@example.org"))
        conn.execute(insert(user_phones).values(user_id=user_id, phone_number="+47 555 0100"))
        conn.execute(insert(user_blocks).values(user_id=user_id, block_type="GENERAL", block_note="lost card"))
        conn.execute(insert(user_attachments).values(user_id=user_id, file_name="id.pdf", content=b"%PDF"))
        conn.execute(insert(user_statistics).values(user_id=user_id, statistic_category="ENG",
                                                    category_type="DEPT", statistic_note="Grace's dept"))
        conn.execute(insert(user_proxies).values(user_id=user_id, proxy_for_primary_id=f"friend-of-{primary_id}"))
        conn.execute(insert(user_proxies).values(user_id=friend, proxy_for_primary_id=primary_id))
        conn.execute(update(fees).where(fees.c.user_id == user_id).values(comment="Grace says she returned it"))
        fee_ids = select(fees.c.id).where(fees.c.user_id == user_id).scalar_subquery()
        conn.execute(update(fee_transactions).where(fee_transactions.c.fee_id.in_(fee_ids))
                     .values(comment="paid by Grace at the desk"))
    return user_id


def remains(engine, user_id: int, primary_id: str = "grace") -> dict:
    """What is left of a user: the row, and how many rows of each kind still hang on the user id."""
    fee_ids = select(fees.c.id).where(fees.c.user_id == user_id).scalar_subquery()
    with engine.connect() as conn:
        def count(table, where):
            return conn.execute(select(func.count()).select_from(table).where(where)).scalar()

        return {
            "row": user_row(engine, user_id),
            "segments": {name: count(t, t.c.user_id == user_id) for name, t in SEGMENTS.items()},
            "statistics": conn.execute(select(user_statistics.c.statistic_category, user_statistics.c.statistic_note)
                                       .where(user_statistics.c.user_id == user_id)).all(),
            "loans": count(loans, loans.c.user_id == user_id),
            "requests": count(requests, requests.c.user_id == user_id),
            "fees": conn.execute(select(fees.c.status, fees.c.comment).where(fees.c.user_id == user_id)).all(),
            "transactions": conn.execute(select(fee_transactions.c.type, fee_transactions.c.comment)
                                         .where(fee_transactions.c.fee_id.in_(fee_ids))).all(),
            "proxies_for_user": count(user_proxies, user_proxies.c.proxy_for_primary_id == primary_id),
        }


NO_SEGMENTS = {name: 0 for name in SEGMENTS}
NAMES = {"first_name": "Grace", "middle_name": "Brewster", "last_name": "Hopper", "external_id": "SIS-1",
         "birth_date": dt.date(1990, 1, 2), "expiry_date": dt.date(2026, 1, 1)}
NO_NAMES = dict.fromkeys(NAMES)
STATISTICAL = {"user_group": "GRAD", "record_type": "PUBLIC", "account_type": "EXTERNAL", "status": "ACTIVE",
               "purge_date": LONG_AGO}


def assert_reduced_to(state: dict, level: str) -> None:
    """The remains of add_full_user's user under each delete-user policy level (docs/delete-user-policy.md)."""
    assert state["segments"] == NO_SEGMENTS and state["proxies_for_user"] == 0
    if level == "fully-remove":
        assert state["row"] is None and state["statistics"] == [] and state["fees"] == []
        assert (state["loans"], state["requests"], state["transactions"]) == (0, 0, [])
        return
    row = state["row"]
    assert row["purged_at"] is not None and row["purge_policy"] == level
    assert {k: row[k] for k in STATISTICAL} == STATISTICAL
    assert (state["loans"], state["requests"]) == (2, 1)
    assert sorted(t.type for t in state["transactions"]) == ["PAYMENT", "WAIVE"]
    assert {f.status for f in state["fees"]} == {"CLOSED"} and len(state["fees"]) == 2
    if level == "keep-fully-reportable":
        assert {k: row[k] for k in NAMES} == NAMES and row["primary_id"] == "grace"
        assert state["statistics"] == [("ENG", "Grace's dept")]
        assert {f.comment for f in state["fees"]} == {"Grace says she returned it"}
        assert "paid by Grace at the desk" in {t.comment for t in state["transactions"]}
        return
    assert {k: row[k] for k in NAMES} == NO_NAMES
    assert row["primary_id"] == ("grace" if level == "keep-statistics" else None)
    assert state["statistics"] == [("ENG", None)]
    assert {f.comment for f in state["fees"]} == {None}
    assert {t.comment for t in state["transactions"]} == {None}


@pytest.mark.parametrize("level", ["keep-fully-reportable", "keep-statistics", "keep-statistics-remove-id",
                                   "fully-remove"])
def test_each_policy_level_leaves_exactly_what_it_keeps(engine, cli, level):
    grace = add_full_user(engine, "grace")
    bystander = add_user(engine, "bystander", purge_date=None, history_loans=1, fees_owed=["2.00"])
    bystander_before = remains(engine, bystander, "bystander")
    assert cli("policy", "set", level)[0] == 0

    summary = purge(max_owed="1.25", dry_run=False)

    assert (summary["purged"], summary["amount_waived"]) == (1, "1.25")
    assert_reduced_to(remains(engine, grace), level)
    assert remains(engine, bystander, "bystander") == bystander_before
    assert user_row(engine, bystander)["primary_id"] == "bystander"
    assert ledger_errors(engine) == []
    with engine.connect() as conn:
        events = conn.execute(select(job_events.c.event, job_events.c.user_id, job_events.c.details)
                              .where(job_events.c.run_id == summary["run_id"])).all()
    assert sorted((e.event, e.user_id) for e in events) == [("FEES_WAIVED", grace), ("USER_PURGED", grace)]
    assert all("grace" not in (e.details or "") for e in events)


def test_a_stricter_policy_reaches_users_purged_earlier_and_a_looser_one_restores_nothing(engine, cli):
    grace = add_full_user(engine, "grace")
    code, out, _ = cli("policy", "show")
    assert code == 0 and "* keep-statistics-remove-id" in out
    assert cli("policy", "set", "keep-fully-reportable")[0] == 0
    purge(max_owed="1.25", dry_run=False)
    assert_reduced_to(remains(engine, grace), "keep-fully-reportable")

    code, out, _ = cli("policy", "set", "keep-statistics")
    assert code == 0 and "applied to 1 users purged earlier" in out
    assert_reduced_to(remains(engine, grace), "keep-statistics")

    code, out, _ = cli("policy", "set", "keep-fully-reportable")
    assert code == 0 and "applied to" not in out
    assert_reduced_to(remains(engine, grace), "keep-statistics")
    code, out, _ = cli("policy", "show")
    assert "* keep-fully-reportable" in out

    assert cli("policy", "set", "keep-statistics-remove-id")[0] == 0
    assert_reduced_to(remains(engine, grace), "keep-statistics-remove-id")
    assert cli("policy", "set", "fully-remove")[0] == 0
    assert_reduced_to(remains(engine, grace), "fully-remove")

    code, _, err = cli("policy", "set", "bogus")
    assert code == 2
    assert "'bogus'" in err and all(level in err for level in
                                    ["keep-fully-reportable", "keep-statistics", "keep-statistics-remove-id",
                                     "fully-remove"])
    assert "* fully-remove" in cli("policy", "show")[1]


def test_users_who_changed_between_selection_and_apply_are_left_alone(engine, prefect_api, monkeypatch):
    ids = {name: add_user(engine, name, purge_date=LONG_AGO) for name in
           ["borrowed", "requested", "fined", "renewed", "quiet"]}
    real_apply = tasks.engine.runner.apply_in_batches

    def meanwhile_at_the_desk(*args, **kwargs):
        with write_transaction(engine) as conn:
            conn.execute(insert(loans).values(user_id=ids["borrowed"], loan_id="L-new", loan_status="ACTIVE",
                                              loan_date=dt.datetime(2026, 12, 20, 12)))
            conn.execute(insert(requests).values(user_id=ids["requested"], request_id="R-new",
                                                 request_status="NOT_STARTED"))
            # Still under max_owed, so only the change itself keeps the user.
            add_fee(conn, ids["fined"], "1.00")
            conn.execute(update(users).where(users.c.id == ids["renewed"]).values(purge_date=dt.date(2027, 12, 1)))
        return real_apply(*args, **kwargs)

    monkeypatch.setattr(tasks.engine.runner, "apply_in_batches", meanwhile_at_the_desk)
    summary = purge(max_owed="5.00", batch_size=2, dry_run=False)

    assert (summary["eligible"], summary["purged"]) == (5, 1)
    assert summary["skipped"] == {"CHANGED_SINCE_SELECTION": 4}
    assert summary["fines_waived"] == 0
    assert purged_ids(engine) == {ids["quiet"]}
    for name in ["borrowed", "requested", "fined", "renewed"]:
        assert user_row(engine, ids[name])["primary_id"] == name
    with engine.connect() as conn:
        report = conn.execute(select(job_runs.c.report).where(job_runs.c.run_id == summary["run_id"])).scalar()
        fined = conn.execute(select(fees.c.status).where(fees.c.user_id == ids["fined"])).scalars().all()
    assert fined == ["ACTIVE"]
    assert "| CHANGED_SINCE_SELECTION | 4 |" in report and "| borrowed |" in report
