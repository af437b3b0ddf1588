"""CREDIT fees (negative amounts, as Alma sends them): how they load, and what they mean for purge
(`--max-owed`) and waive (the threshold). docs/alma-format.md, "Credits"."""
from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import insert, select

from tasks.alma.export import export_users
from tasks.alma.load import load_files
from tasks.db.schema import fees, users
from tasks.errors import InvalidInput


def _fee(fee_id: str, amount: str, fee_type: str = "OVERDUEFINE", status: str = "ACTIVE") -> dict:
    return {"id": fee_id, "type": {"value": fee_type}, "status": {"value": status},
            "balance": amount, "original_amount": amount}


def _user(pid: str, *fee_list: dict, purge_date: str | None = None) -> dict:
    return {"primary_id": pid, "purge_date": purge_date, "fee": list(fee_list)}


def _write(tmp_path, records) -> str:
    path = tmp_path / "users.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    return str(path)


def _exported(engine, pid: str) -> dict:
    out = io.StringIO()
    export_users(engine, [pid], out)
    return json.loads(out.getvalue())


def test_credit_loads_and_exports_negative(engine, tmp_path):
    load_files(engine, [_write(tmp_path, [_user("c1", _fee("CR1", "-12.50", "CREDIT"))])])

    fee = _exported(engine, "c1")["fee"][0]
    assert (fee["type"]["value"], fee["balance"], fee["original_amount"]) == ("CREDIT", "-12.50", "-12.50")


@pytest.mark.parametrize("fee, message", [
    (_fee("N1", "-1.00"), "fee[0].original_amount: may not be negative, got -1.00 (only a CREDIT fee"),
    (_fee("N2", "1.00", "CREDIT"), "fee[0].original_amount: a CREDIT fee carries a negative amount"),
    ({**_fee("N3", "-5.00", "CREDIT"), "balance": "-4.00"}, "fee[0].balance: -4.00 does not match the ledger"),
])
def test_sign_and_ledger_rules_at_the_boundaries(engine, tmp_path, fee, message):
    with pytest.raises(InvalidInput) as refused:
        load_files(engine, [_write(tmp_path, [_user("x1", fee)])])
    assert message in str(refused.value)


def test_a_credit_used_up_by_its_transactions_balances(engine, tmp_path):
    credit = {**_fee("CR2", "-5.00", "CREDIT"), "balance": "0.00", "status": {"value": "CLOSED"},
              "transaction": [{"type": {"value": "REFUND"}, "amount": "-5.00"}]}
    load_files(engine, [_write(tmp_path, [_user("c2", credit)])])
    assert _exported(engine, "c2")["fee"][0]["balance"] == "0.00"


def test_the_database_refuses_a_negative_balance_on_any_other_fee(engine):
    with engine.begin() as conn:
        uid = conn.execute(insert(users).values(primary_id="db1").returning(users.c.id)).scalar()
    with pytest.raises(Exception, match="(?i)check|constraint"):
        with engine.begin() as conn:
            conn.execute(insert(fees).values(user_id=uid, fee_id="D1", fee_type="OVERDUEFINE", status="ACTIVE",
                                             balance_minor=-1, original_amount_minor=-1))
    with engine.begin() as conn:  # a credit may
        conn.execute(insert(fees).values(user_id=uid, fee_id="D2", fee_type="CREDIT", status="ACTIVE",
                                         balance_minor=-1, original_amount_minor=-1))


def _library(engine, tmp_path):
    past = "2020-01-01Z"
    load_files(engine, [_write(tmp_path, [
        _user("only-credit", _fee("A1", "-10.00", "CREDIT"), purge_date=past),
        _user("debt-and-credit", _fee("B1", "5.00"), _fee("B2", "-5.00", "CREDIT"), purge_date=past),
        _user("debt", _fee("C1", "5.00"), purge_date=past),
        _user("nothing", purge_date=past),
        _user("net-at-threshold", _fee("W1", "30.00"), _fee("W2", "-20.00", "CREDIT")),
        _user("above", _fee("V1", "30.00")),
    ])])


def test_purge_keeps_users_holding_a_credit_and_owed_is_net(engine, tmp_path, cli):
    _library(engine, tmp_path)

    code, out, err = cli("purge", "--as-of", "2026-12-20", "--max-owed", "0", "--json")

    assert code == 0, err
    summary = json.loads(out)
    assert summary["skipped"].get("HAS_CREDIT") == 2  # only-credit, debt-and-credit (net 0: not above 0)
    assert summary["skipped"].get("OWES_ABOVE_THRESHOLD") == 1  # debt: 5.00 > 0
    assert summary["eligible"] == 1  # nothing

    code, out, err = cli("purge", "--as-of", "2026-12-20", "--max-owed", "5", "--confirm", "--json")
    assert code == 0, err
    assert json.loads(out)["purged"] == 2  # debt (5.00 waived) and nothing
    assert _exported(engine, "only-credit")["fee"][0]["status"]["value"] == "ACTIVE"


def test_waive_judges_the_net_total_and_never_waives_a_credit(engine, tmp_path, cli):
    _library(engine, tmp_path)

    code, out, err = cli("waive", "--max-fine-threshold", "10", "--reason", "GOODWILL", "--confirm", "--json")

    assert code == 0, err
    summary = json.loads(out)
    assert summary["skipped"].get("ABOVE_FINE_THRESHOLD") == 1  # above: 30.00 > 10
    # net-at-threshold (30 - 20 = 10, not above 10), debt-and-credit (net 0) and debt (5): their debts
    assert summary["fines_waived"] == 3 and summary["amount_waived"] == "40.00"
    fees_after = {f["id"]: f for f in _exported(engine, "net-at-threshold")["fee"]}
    assert fees_after["W1"]["status"]["value"] == "CLOSED" and fees_after["W1"]["transaction"][0]["type"]["value"] == "WAIVE"
    assert fees_after["W2"]["status"]["value"] == "ACTIVE" and fees_after["W2"]["balance"] == "-20.00"
    with engine.connect() as conn:
        credits = conn.execute(select(fees.c.status, fees.c.balance_minor).where(fees.c.fee_type == "CREDIT")).all()
    assert sorted(credits) == [("ACTIVE", -2000), ("ACTIVE", -1000), ("ACTIVE", -500)]
