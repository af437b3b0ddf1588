"""Alma-format load and export, as an administrator uses them: load a file, export it back, compare."""
from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from tasks.alma.export import export_users
from tasks.alma.load import load_files
from tasks.library.codes import descriptions
from tasks.errors import InvalidInput, UserNotFound
from tasks.db.schema import fees, users

FIXTURES = Path(__file__).parent / "fixtures"
# A copy of the contract's example (shared/examples/alma-users.json), so the suite needs nothing
# outside the repository.
EXAMPLE = FIXTURES / "alma-users-example.json"

AMOUNT_FIELDS = {"balance", "original_amount", "amount"}
# Alma sends fields the library does not keep (the record's API address): loading accepts them.
NOT_KEPT = {"link"}


# ------------------------------------------------------------------ helpers


def read_users(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [json.loads(line, parse_float=Decimal) for line in text.splitlines() if line.strip()]
    document = json.loads(text, parse_float=Decimal)
    return document["user"] if isinstance(document, dict) else document


def export_all(engine) -> list[dict]:
    out = io.StringIO()
    export_users(engine, None, out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def normalised(value, key: str | None = None):
    """What must survive a round trip: absent, null and empty are alike; a code is its value (the
    description comes from the code tables); a date is the same with or without Alma's "Z"; an amount
    is a decimal, whether written 12.5 or "12.50"."""
    if isinstance(value, dict):
        if set(value) <= {"value", "desc"} and "value" in value:
            return value["value"]
        out = {k: normalised(v, k) for k, v in value.items() if k not in NOT_KEPT}
        return {k: v for k, v in out.items() if v not in (None, [], {})}
    if isinstance(value, list):
        return [normalised(v, key) for v in value]
    if key in AMOUNT_FIELDS and value is not None:
        return Decimal(str(value))
    if isinstance(value, str) and len(value) == 11 and value.endswith("Z") and value[4] == "-":
        return value[:10]
    return value


def assert_comes_back(original: dict, exported: dict, path: str = "user") -> None:
    """Every field of the original is in the export with the same meaning."""
    original, exported = normalised(original), normalised(exported)
    _assert_subset(original, exported, path)


def _assert_subset(expected, actual, path: str) -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        for k, v in expected.items():
            assert k in actual, f"{path}.{k} is missing from the export"
            _assert_subset(v, actual[k], f"{path}.{k}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{path}: {actual!r} != {expected!r}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            _assert_subset(e, a, f"{path}[{i}]")
    else:
        assert actual == expected, f"{path}: exported {actual!r}, loaded {expected!r}"


def write(tmp_path: Path, records, name: str = "users.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def count_users(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(users)).scalar()


# ------------------------------------------------------------------ round trips


def test_example_file_round_trips_every_field(engine):
    original = read_users(EXAMPLE)
    counts = load_files(engine, [str(EXAMPLE)])
    assert counts["users"] == 2 and counts["fees"] == 3 and counts["transactions"] == 2
    assert counts["loans"] == 2 and counts["requests"] == 2 and counts["identifiers"] == 3

    exported = export_all(engine)

    assert [u["primary_id"] for u in exported] == ["jsmith01", "mjones02"]
    for before, after in zip(original, exported):
        # Both ways: nothing lost, nothing invented.
        assert normalised(after) == normalised(before)


def test_export_writes_alma_shapes(engine, cli):
    load_files(engine, [str(EXAMPLE)])

    code, out, _ = cli("export", "jsmith01")

    assert code == 0
    user = json.loads(out)
    assert user["primary_id"] == "jsmith01"
    assert user["expiry_date"] == "2027-02-15Z"
    assert user["user_group"] == {"value": "GRAD", "desc": "Graduate"}  # the code table's description
    fee = user["fee"][0]
    assert (fee["balance"], fee["original_amount"], fee["transaction"][0]["amount"]) == ("12.50", "15.00", "2.50")
    assert fee["creation_time"] == "2026-10-21T12:00:00Z"
    assert user["attachment"][0]["content_base64"] == "aWQgY2hlY2tlZA=="
    address = user["contact_info"]["address"][0]
    assert address["country"]["value"] == "NOR" and address["start_date"] == "2020-08-22Z"
    assert address["address_type"] == [{"value": "home", "desc": "Home"}]
    assert user["contact_info"]["phone"][0]["preferred_sms"] is False
    assert user["proxy_for_user"] == [{"primary_id": "mjones02"}]


@pytest.mark.parametrize("fixture", ["alma-minimal.json", "alma-users.jsonl", "alma-wrapped.json"])
def test_fixture_files_round_trip(engine, fixture):
    path = FIXTURES / fixture
    original = read_users(path)

    counts = load_files(engine, [str(path)])

    assert counts["users"] == len(original)
    exported = {u["primary_id"]: u for u in export_all(engine)}
    assert sorted(exported) == sorted(u["primary_id"] for u in original)
    for user in original:
        assert_comes_back(user, exported[user["primary_id"]], user["primary_id"])


def test_missing_optional_fields_get_defaults_and_empty_lists(engine):
    load_files(engine, [str(FIXTURES / "alma-minimal.json")])
    out = io.StringIO()

    export_users(engine, ["min001"], out)

    user = json.loads(out.getvalue())
    assert user["primary_id"] == "min001"
    assert user["first_name"] is None and user["expiry_date"] is None and user["user_group"] is None
    # A record that does not say its account type is stored as not known (NULL) and exported null;
    # merge treats it as EXTERNAL (docs/alma-format.md).
    assert user["account_type"] is None and user["protected"] is False
    assert user["contact_info"] == {"address": [], "email": [], "phone": []}
    assert user["user_identifier"] == [] and user["fee"] == [] and user["item_loan"] == []


def test_unicode_names_dates_and_numeric_amounts(engine):
    load_files(engine, [str(FIXTURES / "alma-minimal.json")])
    out = io.StringIO()

    export_users(engine, ["uni002", "noid003"], out)

    lines = out.getvalue().splitlines()
    assert len(lines) == 2  # several ids: JSON Lines, in the order asked
    uni, noid = (json.loads(line) for line in lines)
    assert (uni["first_name"], uni["middle_name"], uni["last_name"]) == ("Zoë", "Đorđe", "李小龍")
    assert "李小龍" in lines[0]  # written as UTF-8 text, not \u escapes
    assert uni["purge_date"] == "2028-06-30Z" and uni["birth_date"] == "2001-02-03Z"
    assert uni["fee"][0]["balance"] == "0.50" and uni["fee"][0]["original_amount"] == "1.00"
    assert noid["user_identifier"] == [] and noid["protected"] is True
    assert noid["record_type"]["value"] == "CONTACT" and noid["account_type"]["value"] == "INTERNAL"
    assert noid["item_loan"][0]["due_date"] == "2026-12-01T20:00:00Z"


def test_amounts_stay_exact_and_times_become_utc(engine, tmp_path):
    # 0.10 + 0.20 is not 0.30 in floating point: the ledger check would refuse this file if it were.
    path = tmp_path / "exact.json"
    path.write_text('[{"primary_id": "p1", "fee": [{"id": "E1", "type": {"value": "OTHER"}, '
                    '"status": {"value": "CLOSED"}, "balance": 0.00, "original_amount": 0.30, '
                    '"creation_time": "2026-03-01T12:00:00+02:00", "transaction": ['
                    '{"type": {"value": "PAYMENT"}, "amount": 0.10}, {"type": {"value": "PAYMENT"}, "amount": 0.20}]}]}]',
                    encoding="utf-8")

    load_files(engine, [str(path)])

    fee = export_all(engine)[0]["fee"][0]
    assert [t["amount"] for t in fee["transaction"]] == ["0.10", "0.20"]
    assert fee["original_amount"] == "0.30" and fee["balance"] == "0.00"
    assert fee["creation_time"] == "2026-03-01T10:00:00Z"


# ------------------------------------------------------------------ refusals


def test_bad_record_loads_nothing_and_names_record_and_field(db_url, cli):
    code, out, err = cli("load", FIXTURES / "alma-bad-ledger.json")

    assert code == 2
    assert "record 2 (primary_id 'bad002'): fee[0].balance" in err
    assert "nothing was loaded" in err
    code, out, err = cli("export", "--all")
    assert code == 0 and out == ""  # not even the good records before and after it


def _valid_user(pid: str = "u1") -> dict:
    return {
        "primary_id": pid,
        "first_name": "Test",
        "record_type": {"value": "PUBLIC", "desc": "Public"},
        "expiry_date": "2030-01-01Z",
        "contact_info": {"email": [{"email_address": f"{pid}@example.edu", "segment_type": "External"}]},
        "user_identifier": [{"id_type": {"value": "BARCODE"}, "value": f"B-{pid}"}],
        "item_loan": [{"loan_id": f"L-{pid}", "loan_status": "ACTIVE", "due_date": "2030-01-01T00:00:00Z"}],
        "user_request": [{"request_id": f"R-{pid}", "request_status": "HISTORY"}],
        "fee": [{"id": f"F-{pid}", "type": {"value": "OVERDUEFINE"}, "status": {"value": "ACTIVE"},
                 "balance": "4.00", "original_amount": "5.00",
                 "transaction": [{"type": {"value": "PAYMENT"}, "amount": "1.00"}]}],
    }


def _set(path: list, value):
    def change(user: dict) -> None:
        target = user
        for step in path[:-1]:
            target = target[step]
        if value is _DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value
    return change


_DELETE = object()

BAD_RECORDS = {
    "missing primary_id": (_set(["primary_id"], _DELETE), "record 2: primary_id: is required"),
    "wrong type": (_set(["first_name"], 42), "first_name: must be a string"),
    "impossible date": (_set(["expiry_date"], "2030-02-30Z"), "expiry_date: is not a real date"),
    "date in another form": (_set(["expiry_date"], "01/02/2030"), "expiry_date: must be a date YYYY-MM-DD"),
    "bad time": (_set(["item_loan", 0, "due_date"], "tomorrow"), "item_loan[0].due_date: must be an ISO 8601 time"),
    "negative amount": (_set(["fee", 0, "transaction", 0, "amount"], "-1.00"),
                        "fee[0].transaction[0].amount: may not be negative"),
    "non-numeric amount": (_set(["fee", 0, "original_amount"], "five"), "fee[0].original_amount: must be an amount"),
    "fractions of a cent": (_set(["fee", 0, "balance"], "4.001"), "fee[0].balance: has more than 2 decimal places"),
    "ledger": (_set(["fee", 0, "balance"], "5.00"), "fee[0].balance: 5.00 does not match the ledger"),
    "record_type": (_set(["record_type"], {"value": "ROBOT"}), "record_type: unknown value 'ROBOT'; valid values: PUBLIC, STAFF, CONTACT"),
    "account_type": (_set(["account_type"], {"value": "LOCAL"}), "account_type: unknown value 'LOCAL'"),
    "loan_status": (_set(["item_loan", 0, "loan_status"], "LOST"), "item_loan[0].loan_status: unknown value 'LOST'"),
    "request_status": (_set(["user_request", 0, "request_status"], "DONE"), "user_request[0].request_status: unknown value"),
    "fee status": (_set(["fee", 0, "status"], {"value": "PAID"}), "fee[0].status: unknown value 'PAID'"),
    "segment_type": (_set(["contact_info", "email", 0, "segment_type"], "internal"),
                     "contact_info.email[0].segment_type: unknown value 'internal'"),
    "too long": (_set(["first_name"], "x" * 256), "first_name: is 256 characters long; at most 255 fit"),
    "not a boolean": (_set(["protected"], "yes"), "protected: must be true or false"),
    "missing fee id": (_set(["fee", 0, "id"], _DELETE), "fee[0].id: is required"),
    "lone surrogate": (_set(["last_name"], "\ud800"), "last_name: is not valid UTF-8 text"),
    "same identifier": (_set(["user_identifier", 0, "value"], "B-u1"),
                        "user_identifier[0].value: id_type 'BARCODE' value 'B-u1' appears twice in the file"),
    "same loan id": (_set(["item_loan", 0, "loan_id"], "L-u1"), "item_loan[0].loan_id: 'L-u1' appears twice"),
    "same request id": (_set(["user_request", 0, "request_id"], "R-u1"), "user_request[0].request_id: 'R-u1' appears twice"),
    "same fee id": (_set(["fee", 0, "id"], "F-u1"), "fee[0].id: 'F-u1' appears twice"),
    "same primary id": (_set(["primary_id"], "u1"), "record 2 (primary_id 'u1'): primary_id: 'u1' appears twice"),
}


@pytest.mark.parametrize("case", list(BAD_RECORDS))
def test_invalid_record_is_refused_with_record_and_field(engine, tmp_path, case):
    change, expected = BAD_RECORDS[case]
    bad = _valid_user("u2")
    change(bad)
    path = write(tmp_path, [_valid_user("u1"), bad, _valid_user("u3")])

    with pytest.raises(InvalidInput) as refused:
        load_files(engine, [str(path)])

    assert str(path) in str(refused.value)
    assert expected in str(refused.value)
    assert count_users(engine) == 0


def test_broken_utf8_is_refused(engine, tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes('[{"primary_id": "p1", "last_name": "Gr\u00f8nn"}]'.encode("latin-1"))

    with pytest.raises(InvalidInput, match=r"latin1\.json: line 1: not valid UTF-8"):
        load_files(engine, [str(path)])
    assert count_users(engine) == 0


def test_ids_already_in_the_database_are_refused(engine, tmp_path):
    load_files(engine, [str(write(tmp_path, [_valid_user("u1")], "first.json"))])
    again = _valid_user("u9")
    again["user_identifier"][0]["value"] = "B-u1"
    again["fee"][0]["id"] = "F-u1"

    with pytest.raises(InvalidInput) as refused:
        load_files(engine, [str(write(tmp_path, [{"primary_id": "u1"}, again], "second.json"))])

    message = str(refused.value)
    assert "record 1 (primary_id 'u1'): primary_id: 'u1' is already in the library database" in message
    assert "record 2 (primary_id 'u9'): user_identifier[0].value: id_type 'BARCODE' value 'B-u1' is already" in message
    assert "record 2 (primary_id 'u9'): fee[0].id: 'F-u1' is already in the library database" in message
    assert count_users(engine) == 1


def test_each_file_is_all_or_nothing(engine, tmp_path):
    good = write(tmp_path, [_valid_user("u1")], "good.json")
    bad = write(tmp_path, [_valid_user("u2"), {"primary_id": "u3", "birth_date": "yesterday"}], "bad.json")

    with pytest.raises(InvalidInput) as refused:
        load_files(engine, [str(good), str(bad)])

    assert "bad.json: record 2 (primary_id 'u3'): birth_date" in str(refused.value)
    assert "loaded before this error" in str(refused.value) and "good.json" in str(refused.value)
    assert [u["primary_id"] for u in export_all(engine)] == ["u1"]


def test_not_json_is_refused_with_position(engine, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[{"primary_id": "p1",}]', encoding="utf-8")

    with pytest.raises(InvalidInput, match=r"broken\.json: not valid JSON at line 1 column 22"):
        load_files(engine, [str(path)])


def test_bad_line_in_json_lines_names_the_line(engine, tmp_path):
    path = tmp_path / "users.jsonl"
    path.write_text('{"primary_id": "a"}\n{"primary_id": "b"}\n{"primary_id": "c", "user_group": 7}\n',
                    encoding="utf-8")

    with pytest.raises(InvalidInput, match=r"line 3 \(primary_id 'c'\): user_group: must be a code"):
        load_files(engine, [str(path)])
    assert count_users(engine) == 0


# ------------------------------------------------------------------ codes


def test_codes_met_while_loading_are_added_with_the_files_description(engine, cli):
    code, out, _ = cli("load", EXAMPLE)
    assert code == 0
    assert json.loads(out)["users"] == 2

    with engine.connect() as conn:
        roles = descriptions(conn, "role-type")
        countries = descriptions(conn, "country")
        groups = descriptions(conn, "user-group")
    assert roles["21"] == "Circulation Desk Operator"  # new: the file's description
    assert countries["NOR"] == "Nor"
    assert groups["GRAD"] == "Graduate"  # known: the administrator's description stays
    code, out, _ = cli("codes", "list", "statistic-category")
    assert "SCI" in out and "Sciences" in out
    staff = json.loads(cli("export", "mjones02")[1])
    assert {"value": "21", "desc": "Circulation Desk Operator"} in [r["role_type"] for r in staff["user_role"]]


# ------------------------------------------------------------------ export


def test_export_of_unknown_user_exits_3_and_names_it(db_url, cli):
    cli("load", EXAMPLE)

    code, out, err = cli("export", "nobody")
    assert code == 3 and "nobody" in err and out == ""

    code, out, err = cli("export", "jsmith01", "ghost", "mjones02")
    assert code == 3 and "'ghost'" in err
    assert out == ""  # refused before printing anyone


def _many_users(n: int) -> list[dict]:
    return [{"primary_id": f"m{i:05d}", "last_name": f"Name {i}",
             "fee": [{"id": f"MF{i}", "type": {"value": "OTHER"}, "status": {"value": "ACTIVE"},
                      "balance": "1.25", "original_amount": "1.25"}] if i % 3 == 0 else []}
            for i in range(n)]


def test_export_all_streams_json_lines_without_purged_users(engine, tmp_path, cli):
    load_files(engine, [str(write(tmp_path, _many_users(2500)))])
    with engine.begin() as conn:
        conn.execute(update(users).where(users.c.primary_id == "m00007").values(purged_at=func.current_timestamp()))

    code, out, _ = cli("export", "--all")

    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2499
    exported = [json.loads(line) for line in lines]
    assert exported[0]["primary_id"] == "m00000" and exported[-1]["primary_id"] == "m02499"
    assert "m00007" not in {u["primary_id"] for u in exported}
    assert exported[3]["fee"][0]["balance"] == "1.25" and exported[1]["fee"] == []
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(fees)).scalar() == 834


def test_export_all_writes_chunk_by_chunk(engine, tmp_path):
    load_files(engine, [str(write(tmp_path, _many_users(2500)))])

    class Recorder(io.StringIO):
        writes = 0

        def write(self, text):
            Recorder.writes += 1
            return super().write(text)

    out = Recorder()
    export_users(engine, None, out)

    # Output leaves in pieces as it is produced, not as one document at the end.
    assert Recorder.writes >= 3
    assert len(out.getvalue().splitlines()) == 2500


def test_export_of_a_purged_user_is_not_found(engine):
    load_files(engine, [str(EXAMPLE)])
    with engine.begin() as conn:
        conn.execute(update(users).where(users.c.primary_id == "mjones02").values(purged_at=func.current_timestamp()))

    with pytest.raises(UserNotFound, match="mjones02"):
        export_users(engine, ["mjones02"], io.StringIO())


def test_loaded_file_can_be_exported_and_loaded_again(engine, tmp_path, db_url):
    load_files(engine, [str(FIXTURES / "alma-wrapped.json"), str(FIXTURES / "alma-users.jsonl")])
    first = export_all(engine)
    with engine.begin() as conn:
        conn.execute(users.delete())
    exported_file = tmp_path / "export.jsonl"
    exported_file.write_text("\n".join(json.dumps(u, ensure_ascii=False) for u in first) + "\n", encoding="utf-8")

    load_files(engine, [str(exported_file)])

    assert export_all(engine) == first


# ------------------------------------------------------------------ exactness of the fast JSON path


def test_numbers_stay_exact_whichever_json_reader_reads_the_line(engine, tmp_path):
    # The fast reader (orjson) rounds numbers of more than 15 digits through a float: such lines are
    # read exactly instead, so an amount with a fraction of a cent far out is still refused...
    path = tmp_path / "far-out.jsonl"
    path.write_text('{"primary_id": "p1", "fee": [{"id": "F1", "type": {"value": "OTHER"}, "status": '
                    '{"value": "ACTIVE"}, "balance": 4.0000000000000001, "original_amount": 4}]}\n', encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"fee\[0\]\.balance: has more than 2 decimal places"):
        load_files(engine, [str(path)])

    # ... and numbers outside the spec come back as they were: whole numbers as integers, however
    # large, others as the nearest double.
    path = tmp_path / "numbers.jsonl"
    path.write_text('{"primary_id": "p2", "score": 1.0, "big": 123456789012345678901234, "ratio": 0.25, '
                    '"huge": 1e300, "tiny": 1.5e-7}\n', encoding="utf-8")
    load_files(engine, [str(path)])
    (user,) = export_all(engine)
    assert (user["score"], user["big"], user["ratio"], user["tiny"]) == (1, 123456789012345678901234, 0.25, 1.5e-7)
    assert user["huge"] == 10**300 and isinstance(user["score"], int)


def test_text_with_tabs_newlines_and_backslashes_round_trips(engine, tmp_path):
    # PostgreSQL takes the rows with COPY, whose text form escapes these characters.
    odd = "tab\there, new\nline, back\\slash, \\N, \r\n"
    user = _valid_user("u1")
    user["first_name"] = odd
    user["item_loan"][0]["title"] = odd
    user["hobby"] = odd
    user["last_name"] = "only a back\\slash"        # printable, yet COPY's escape character
    user["middle_name"] = "no\u00a0break \\N"          # not printable, but nothing COPY escapes but the backslash
    path = write(tmp_path, [user])

    load_files(engine, [str(path)])

    (exported,) = export_all(engine)
    assert exported["first_name"] == odd and exported["item_loan"][0]["title"] == odd and exported["hobby"] == odd
    assert exported["last_name"] == "only a back\\slash" and exported["middle_name"] == "no\u00a0break \\N"


def test_problems_of_several_chunks_are_listed_in_the_files_order(engine, tmp_path):
    # Load checks and writes 5,000 records at a time; on PostgreSQL the database work of one chunk runs
    # while the next is checked. The message still lists the problems in the file's order.
    load_files(engine, [str(write(tmp_path, [{"primary_id": "m00010"}], "first.json"))])
    records = _many_users(6000)
    records[5500]["birth_date"] = "yesterday"
    path = tmp_path / "many.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")

    with pytest.raises(InvalidInput) as refused:
        load_files(engine, [str(path)])

    message = str(refused.value)
    already = message.index("line 11 (primary_id 'm00010'): primary_id: 'm00010' is already in the library database")
    assert already < message.index("line 5501 (primary_id 'm05500'): birth_date: must be a date")
    assert message.endswith("nothing was loaded") and count_users(engine) == 1
