"""The typed path of the load (tasks/alma/typed.py: a JSON line of the plain shape decoded and checked
by msgspec) makes exactly what format.py's checks make of the same lines: the same rows, keys, codes
and problems, chunk by chunk; and a record that is not plain in any way is left to those checks."""
from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import pytest

from tasks.alma import load, typed
from tasks.alma.export import export_users
from tasks.devtools.demo import make_demo_library
from tasks.db.engine import get_engine
from tasks.library.init_db import init_db

from test_alma_load_chunks import user

ALMA_REAL = Path(__file__).parent / "fixtures" / "alma-real"  # the copies of ../shared/alma-real


@pytest.fixture(scope="module")
def codes(tmp_path_factory):
    """The code tables of a new library, as a load starts with them."""
    engine = get_engine(f"sqlite:///{tmp_path_factory.mktemp('codes')}/library.db")
    init_db(engine)
    loader = load._Loader("x")
    with engine.connect() as conn:
        loader.start(conn)
    return loader.found, loader.in_db


def _checked(path: Path, codes, monkeypatch, typed_path: bool, taken: list) -> list:
    found, in_db = copy.deepcopy(codes)
    with monkeypatch.context() as m:
        if typed_path:
            real = load._take_typed

            def counted(*args):
                real(*args)
                taken.append(1)

            m.setattr(load, "_take_typed", counted)
        else:
            m.setattr(typed, "decode", lambda raw: None)
        return [tuple(c) for c in load._checked_here(load.open_source(str(path)), found, in_db)]


def assert_same(tmp_path, records_or_lines, codes, monkeypatch) -> int:
    """Both paths' chunks are equal; returns how many records the typed path took."""
    path = tmp_path / "users.jsonl"
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records_or_lines]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    taken: list = []
    with_typed = _checked(path, codes, monkeypatch, True, taken)
    without = _checked(path, codes, monkeypatch, False, [])
    assert with_typed == without
    return len(taken)


@pytest.fixture(scope="module")
def demo_lines(tmp_path_factory) -> list[str]:
    """A demo library of 600 users (every shape demo-data makes), exported as JSON Lines."""
    engine = get_engine(f"sqlite:///{tmp_path_factory.mktemp('demo')}/demo.db")
    init_db(engine)
    make_demo_library(engine, users=600, seed=7)
    out = io.StringIO()
    export_users(engine, None, out)
    return out.getvalue().splitlines()


def test_the_demo_library_makes_the_same_rows_and_goes_the_typed_way(tmp_path, codes, monkeypatch, demo_lines):
    monkeypatch.setattr(load, "CHUNK", 100)  # several chunks: codes and keys carried from one to the next
    taken = assert_same(tmp_path, demo_lines, codes, monkeypatch)
    assert taken > 0.9 * len(demo_lines)


def _real_users() -> list[dict]:
    found = []
    for path in sorted(ALMA_REAL.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        for candidate in document.get("user", [document]) if isinstance(document.get("user"), list) else [document]:
            if isinstance(candidate, dict) and "primary_id" in candidate:
                found.append(candidate)
    return found


def test_every_real_alma_user_makes_the_same_rows(tmp_path, codes, monkeypatch):
    real = _real_users()
    assert len(real) >= 8
    # The real files reuse one another's ids (SOURCES.md): each file on its own.
    for n, record in enumerate(real):
        assert_same(tmp_path, [record], codes, monkeypatch)


def _plain(n: int) -> dict:
    record = user(n)
    record["item_loan"][0].pop("call_number")  # outside the format: not plain
    return record


NOT_PLAIN = {
    "a field outside the format": lambda r: r.update(user_title={"value": "Dr"}),
    "a null boolean": lambda r: r.update(protected=None),
    "a code the tables lack": lambda r: r.update(status={"value": "NEWSTATUS"}),
    "a code as a plain string": lambda r: r.update(status="ACTIVE"),
    "a code with more than value and desc": lambda r: r.update(status={"value": "ACTIVE", "desc": "Active", "x": 1}),
    "an empty code": lambda r: r.update(status={"value": "", "desc": None}),
    "a date that does not exist": lambda r: r.update(expiry_date="2027-02-30Z"),
    "a time with an offset": lambda r: r["item_loan"][0].update(due_date="2030-01-01T02:00:00+02:00"),
    "a time in epoch milliseconds": lambda r: r["item_loan"][0].update(due_date=1893456000000),
    "an amount with three decimals": lambda r: r.update(fee=[{**user(3)["fee"][0], "balance": "4.001"}]),
    "a ledger that does not add up": lambda r: r.update(fee=[{**user(3)["fee"][0], "balance": "3.00"}]),
    "a credit": lambda r: r.update(fee=[{"id": "CR-1", "type": {"value": "CREDIT"}, "status": {"value": "ACTIVE"},
                                         "balance": "-5.00", "original_amount": "-5.00"}]),
    "a NUL in a name": lambda r: r.update(last_name="Na\u0000me"),
    "a name too long": lambda r: r.update(first_name="x" * 300),
    "a lone list item as an object": lambda r: r.update(user_identifier=r["user_identifier"][0]),
    "a role twice": lambda r: r["user_role"].append(dict(r["user_role"][0])),
    "a loan id twice in the record": lambda r: r["item_loan"].append(dict(r["item_loan"][0])),
    "the name @typed": lambda r: r.update({"@typed": {}}),
    "a barcode as value and link": lambda r: r.update(fee=[{**user(3)["fee"][0], "barcode": {"value": "B", "link": "l"}}]),
}


@pytest.mark.parametrize("change", NOT_PLAIN, ids=list(NOT_PLAIN))
def test_a_record_that_is_not_plain_is_left_to_the_checks(tmp_path, codes, monkeypatch, change):
    records = [_plain(n) for n in range(1, 7)]
    NOT_PLAIN[change](records[4])
    with_it = assert_same(tmp_path, records, codes, monkeypatch)
    without = assert_same(tmp_path, records[:4] + records[5:], codes, monkeypatch)
    assert with_it == without  # it went the checks' way; the others as before


def test_keys_met_again_across_records_are_worded_as_the_checks_word_them(tmp_path, codes, monkeypatch):
    records = [_plain(n) for n in range(1, 8)]
    records[4]["primary_id"] = "c002"
    records[5]["item_loan"][0]["loan_id"] = "L-c001"
    records[6]["user_identifier"][0]["value"] = "B-c003"
    assert_same(tmp_path, records, codes, monkeypatch)


def test_text_beyond_ascii_goes_the_typed_way(tmp_path, codes, monkeypatch):
    records = [_plain(n) for n in range(1, 6)]
    for record in records:
        record["first_name"] = "Åsa Ñúñez 山田"
    assert assert_same(tmp_path, records, codes, monkeypatch) >= 2
