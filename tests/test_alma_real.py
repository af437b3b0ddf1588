"""Real Alma API responses (tests/fixtures/alma-real/, SOURCES.md says where each came from): every
file loads, sub-resources attach to their user, and what was loaded comes back, every field of it."""
from __future__ import annotations

import datetime as dt
import io
import json
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import pytest

from tasks.alma.export import export_users
from tasks.alma.load import load_files
from tasks.errors import InvalidInput

REAL = Path(__file__).parent / "fixtures" / "alma-real"
P = "pulibrary-bibdata--spec-fixtures-files-alma-patrons-"
S = "scriptotek-php-alma-client--"
USER_FILES = [
    f"{S}spec-data-user_response.json",
    f"{S}spec-data-users_response.json",
    f"{S}issue-6-contact-user.json",
    "slsp-almapiwrapper--test-data-user_test1.json",
    "slsp-almapiwrapper--test-data-user_testLoanUser1.json",
    "tulibraries-alma_rb--spec-fixtures-single_user.json",
    f"{P}bbird.json",
    f"{P}cmonster.json",
    f"{P}22999000883100.json",
    f"{P}BC123456789.json",
]
XML_USER = "kth-camel-alma--alma-component-src-test-resources-grodan.xml"
# sub-resource file -> (its list, how many items)
SUB_FILES = {
    f"{S}spec-data-loans_response.json": ("item_loan", 2),
    f"{S}spec-data-item_loan_response.json": ("item_loan", 1),
    f"{S}spec-data-fees_response.json": ("fee", 1),
    f"{S}spec-data-fee_response.json": ("fee", 1),
    f"{S}spec-data-item_requests_response.json": ("user_request", 1),
    "tulibraries-alma_rb--spec-fixtures-fines.json": ("fee", 4),
    "tulibraries-alma_rb--spec-fixtures-requests-pg2.json": ("user_request", 1),
}
AMOUNTS = {"balance", "original_amount", "amount"}
TIMES = {"creation_time", "status_time", "transaction_time", "loan_date", "due_date", "return_date", "created_date"}


def test_every_real_file_is_a_test_case():
    names = {p.name for p in REAL.iterdir()} - {"SOURCES.md"}
    assert names == set(USER_FILES) | {XML_USER} | set(SUB_FILES)


# ------------------------------------------------------------------ comparing what came back


def _users_in(path: Path) -> list[dict]:
    document = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    return document["user"] if "user" in document else [document]


def _time(value) -> dt.datetime:
    if isinstance(value, int):
        return dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=value)
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00") if len(value) > 11 else value[:10])
    return parsed.astimezone(dt.timezone.utc).replace(tzinfo=None) if parsed.tzinfo else parsed


def _empty(value) -> bool:
    return value in (None, [], {}) or isinstance(value, dict) and all(_empty(v) for v in value.values())


def assert_same(loaded, exported, path: str = "user") -> None:
    """`exported` says what `loaded` said, field for field. Allowed differences, the contract's
    canonical forms: an amount as a decimal string, a date with Alma's "Z", a time in ISO 8601 UTC, a
    code as {"value", "desc"} (desc from the code tables), a lone list item as a list; and fields the
    export adds that the record left out are empty (null, [], or `protected` false)."""
    if isinstance(loaded, dict) and isinstance(exported, dict):
        for key, value in loaded.items():
            assert key in exported, f"{path}.{key} is missing from the export"
            _same_field(key, value, exported[key], f"{path}.{key}")
        for key in exported.keys() - loaded.keys():
            if exported[key] is False:
                continue  # a boolean the record does not give is false (`protected`, `popup_note`, ...)
            assert _empty(exported[key]), f"{path}.{key}: exported {exported[key]!r}, not in the file"
        return
    if isinstance(loaded, list):
        assert isinstance(exported, list) and len(exported) == len(loaded), f"{path}: {exported!r} != {loaded!r}"
        for i, (a, b) in enumerate(zip(loaded, exported)):
            assert_same(a, b, f"{path}[{i}]")
        return
    assert exported == loaded, f"{path}: exported {exported!r}, loaded {loaded!r}"


def _same_field(key: str, loaded, exported, path: str) -> None:
    if loaded is None:
        assert exported is None or exported == [], f"{path}: null came back as {exported!r}"
    elif key in AMOUNTS and not isinstance(loaded, (dict, list)):
        assert Decimal(str(exported)) == Decimal(str(loaded)), f"{path}: {exported!r} != {loaded!r}"
        assert isinstance(exported, str), f"{path}: amounts are exported as decimal strings"
    elif key in TIMES and isinstance(loaded, (str, int)) and not isinstance(loaded, bool):
        assert _time(exported) == _time(loaded), f"{path}: {exported!r} != {loaded!r}"
    elif isinstance(loaded, str) and len(loaded) == 10 and loaded[4:5] == "-" and isinstance(exported, str):
        assert exported.rstrip("Z") == loaded, f"{path}: {exported!r} != {loaded!r}"
    elif isinstance(loaded, dict) and set(loaded) <= {"value", "desc"} and loaded.get("value"):
        # a code: its value; the desc comes from the code tables (new codes take the file's)
        assert isinstance(exported, dict) and exported["value"] == loaded["value"], f"{path}: {exported!r} != {loaded!r}"
    elif isinstance(loaded, dict) and isinstance(exported, list):
        assert_same([loaded], exported, path)
    else:
        assert_same(loaded, exported, path)


def _export(engine, primary_id: str, fmt: str = "json") -> str:
    out = io.StringIO()
    export_users(engine, [primary_id], out, fmt=fmt)
    return out.getvalue()


# ------------------------------------------------------------------ users


@pytest.mark.parametrize("name", USER_FILES)
def test_real_user_file_loads_and_comes_back_with_every_field(engine, name):
    counts = load_files(engine, [str(REAL / name)])

    originals = _users_in(REAL / name)
    assert counts["users"] == len(originals)
    for original in originals:
        exported = json.loads(_export(engine, original["primary_id"]))
        assert_same(original, exported, original["primary_id"])


def test_fields_outside_the_contract_come_back_as_loaded(engine):
    load_files(engine, [str(REAL / "slsp-almapiwrapper--test-data-user_test1.json")])

    user = json.loads(_export(engine, "TestUser1"))

    assert user["full_name"] == "Test TestName" and user["status_date"] == "2022-06-18Z"
    assert user["pref_first_name"] == "" and user["is_researcher"] is False and user["researcher"] is None
    assert user["campus_code"] == {"value": None, "desc": ""}
    with_parameters = [r for r in user["user_role"] if r["parameter"]]
    assert with_parameters, "the staff roles' parameter lists (circulation desk scopes) are kept"
    assert len(user["user_role"]) == 91


def test_null_booleans_stay_null_and_a_missing_account_type_is_not_invented(engine):
    load_files(engine, [str(REAL / "tulibraries-alma_rb--spec-fixtures-single_user.json"),
                        str(REAL / f"{S}issue-6-contact-user.json")])

    johns = json.loads(_export(engine, "johns"))
    contact = json.loads(_export(engine, "no primary id (123456789023)"))

    assert johns["contact_info"]["address"][0]["preferred"] is None
    assert johns["loans"] == {"value": "14"}  # Alma's summary field, not our item_loan list
    assert contact["account_type"] is None
    assert contact["gender"] == {"value": "", "desc": ""} and contact["link"].endswith("/users/-")


def test_the_fixture_reusing_another_ones_primary_id_and_barcode_is_refused(engine):
    with pytest.raises(InvalidInput) as refused:
        load_files(engine, [str(REAL / f"{P}bbird.json"), str(REAL / f"{P}cmonster.json")])

    message = str(refused.value)
    assert "cmonster.json: record 1 (primary_id '100000000'): primary_id: '100000000' is already in the library database" in message
    assert "user_identifier[1].value: id_type 'BARCODE' value '00000000000000' is already in the library database" in message
    assert "(loaded before this error: " in message and "bbird.json" in message
    assert json.loads(_export(engine, "100000000"))["first_name"] == "Big"  # bbird stays as loaded


# ------------------------------------------------------------------ sub-resources


@pytest.mark.parametrize("name", list(SUB_FILES))
def test_sub_resource_file_alone_says_what_it_is_and_how_to_attach_it(engine, name):
    with pytest.raises(InvalidInput) as refused:
        load_files(engine, [str(REAL / name)])

    message = str(refused.value)
    kind = {"item_loan": "loans", "fee": "fees", "user_request": "requests"}[SUB_FILES[name][0]]
    assert f"this is a {kind} response" in message
    assert f"load --attach-to PRIMARY_ID {REAL / name}" in message


@pytest.mark.parametrize("name", list(SUB_FILES))
def test_sub_resource_file_attaches_to_its_user_and_comes_back(engine, name):
    load_files(engine, [str(REAL / f"{S}spec-data-user_response.json")])
    segment, count = SUB_FILES[name]

    counts = load_files(engine, [str(REAL / name)], attach_to="12345")

    document = json.loads((REAL / name).read_text(encoding="utf-8"), parse_float=Decimal)
    items = document.get(segment, [document] if segment not in document else None)
    assert len(items) == count
    exported = json.loads(_export(engine, "12345"))
    assert_same(items, exported[segment], segment)
    assert counts[{"item_loan": "loans", "fee": "fees", "user_request": "requests"}[segment]] == count


def test_attaching_to_a_user_not_in_the_library_is_refused(engine):
    with pytest.raises(InvalidInput, match="no user with primary_id 'ghost'"):
        load_files(engine, [str(REAL / f"{S}spec-data-fees_response.json")], attach_to="ghost")


def test_alma_sample_fees_credit_epoch_times_and_partial_payment(engine):
    load_files(engine, [str(REAL / "tulibraries-alma_rb--spec-fixtures-single_user.json")])
    load_files(engine, [str(REAL / "tulibraries-alma_rb--spec-fixtures-fines.json")], attach_to="johns")

    fees = {f["id"]: f for f in json.loads(_export(engine, "johns"))["fee"]}

    credit = fees["950644660000121"]
    assert credit["type"]["value"] == "CREDIT" and credit["balance"] == "-50.00" and credit["original_amount"] == "-50.00"
    assert fees["950645520000121"]["creation_time"] == "2014-10-21T08:17:12.450000Z"
    paid = fees["711924990000121"]
    assert paid["balance"] == "55.00" and paid["transaction"][0]["amount"] == "22.00"
    assert paid["transaction"][0]["created_by"] == "Ex Libris"  # outside the spec, kept


def test_fee_barcode_as_alma_sends_it(engine, tmp_path):
    fee = {"id": "B1", "type": {"value": "OVERDUEFINE"}, "status": {"value": "ACTIVE"}, "balance": 5,
           "original_amount": 5, "barcode": {"value": "303011kj0", "link": "/almaws/v1/items?item_barcode=303011kj0"}}
    path = tmp_path / "u.json"
    path.write_text(json.dumps([{"primary_id": "b1", "fee": [fee]}]), encoding="utf-8")

    load_files(engine, [str(path)])

    assert json.loads(_export(engine, "b1"))["fee"][0]["barcode"] == fee["barcode"]


# ------------------------------------------------------------------ XML


def _elements(element: ET.Element, path: str = "") -> dict[str, tuple]:
    """Every element as path -> (text, attributes), empty wrappers and empty elements left out."""
    out = {}
    for i, child in enumerate(element):
        here = f"{path}/{child.tag}[{i}]"
        if len(child):
            out.update(_elements(child, here))
        else:
            out[here] = ((child.text or "").strip(), dict(child.attrib))
    return out


def test_xml_user_loads_by_content_and_comes_back_as_xml(engine):
    counts = load_files(engine, [str(REAL / XML_USER)])
    assert counts["users"] == 1

    written = _export(engine, "grodan.boll@domain.nu", fmt="xml")

    original = ET.parse(REAL / XML_USER).getroot()
    back = ET.fromstring(written.split("?>", 1)[1])
    assert back.tag == "user"
    mine = {k.split("[")[0]: v for k, v in _elements(back).items()}
    for key, (text, attributes) in {k.split("[")[0]: v for k, v in _elements(original).items()}.items():
        got_text, got_attributes = mine[key]
        if "desc" not in attributes:  # a code written without one gets the code table's desc
            got_attributes.pop("desc", None)
        assert (got_text, got_attributes) == (text, attributes), key
    user = json.loads(_export(engine, "grodan.boll@domain.nu"))
    assert user["middle_name"] == "" and user["record_type"] == {"value": "PUBLIC", "desc": "Public"}
    assert user["user_group"]["value"] == "10" and user["external_id"] == "SIS"


@pytest.mark.parametrize("name", USER_FILES[:1] + USER_FILES[3:4] + USER_FILES[5:7])
def test_xml_export_loads_back_to_the_same_xml(engine, tmp_path, db_url, name):
    load_files(engine, [str(REAL / name)])
    pid = _users_in(REAL / name)[0]["primary_id"]
    first = _export(engine, pid, fmt="xml")
    path = tmp_path / "user.xml"
    path.write_text(first, encoding="utf-8")
    from sqlalchemy import delete

    from tasks.db.schema import users
    with engine.begin() as conn:
        conn.execute(delete(users))

    load_files(engine, [str(path)])

    assert _export(engine, pid, fmt="xml") == first


def test_users_xml_of_several_and_export_all_as_xml(engine, tmp_path):
    load_files(engine, [str(REAL / name) for name in USER_FILES[3:7]])
    out = io.StringIO()
    assert export_users(engine, None, out, fmt="xml") == 4
    path = tmp_path / "users.xml"
    path.write_text(out.getvalue(), encoding="utf-8")
    root = ET.fromstring(out.getvalue().split("?>", 1)[1])
    assert root.tag == "users" and len(root) == 4
    from sqlalchemy import delete

    from tasks.db.schema import users
    with engine.begin() as conn:
        conn.execute(delete(users))

    assert load_files(engine, [str(path)])["users"] == 4
    again = io.StringIO()
    export_users(engine, None, again, fmt="xml")
    assert again.getvalue() == out.getvalue()


def test_xml_with_a_doctype_is_refused_before_any_entity_is_read(engine, tmp_path):
    path = tmp_path / "bomb.xml"
    path.write_text('<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>\n'
                    "<user><primary_id>&lol2;</primary_id></user>\n", encoding="utf-8")

    with pytest.raises(InvalidInput, match="DOCTYPE is refused"):
        load_files(engine, [str(path)])


def test_xml_not_well_formed_names_the_position(engine, tmp_path):
    path = tmp_path / "broken.xml"
    path.write_text("<user>\n  <primary_id>x</primary_id>\n  <first_name>y</last_name>\n</user>\n", encoding="utf-8")

    with pytest.raises(InvalidInput, match=r"broken\.xml: not well-formed XML at line 3"):
        load_files(engine, [str(path)])


def test_command_line_attaches_a_sub_resource_and_exports_xml(engine, capsys):
    """`load --attach-to PRIMARY_ID` and `export --format xml` (flows/cli.py), as an administrator
    types them; each option has its help."""
    from flows.cli import main

    assert main(["load", str(REAL / f"{S}spec-data-user_response.json")]) == 0
    assert main(["load", "--attach-to", "12345", str(REAL / f"{S}spec-data-fees_response.json")]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["fees"] == 1

    assert main(["export", "--format", "xml", "12345"]) == 0
    root = ET.fromstring(capsys.readouterr().out.split("?>", 1)[1])
    assert root.tag == "user" and root.findtext("primary_id") == "12345"
    assert main(["export", "--format", "yaml", "12345"]) == 2
    assert "yaml" in capsys.readouterr().err

    for command, option in (("load", "--attach-to"), ("export", "--format")):
        assert main([command, "--help"]) == 0
        help_text = capsys.readouterr().out
        assert option in help_text and "Alma" in help_text.split(option, 1)[1]


def test_anonymising_a_loan_takes_the_alma_fields_that_name_its_patron(engine):
    """An Alma loan carries its patron's primary id (`user_id`, kept in `extra`): once Anonymise loan
    history unlinks the loan (tasks/db/statements.unlink_from_users), nothing on the row names them."""
    from sqlalchemy import select, update

    from tasks.db.schema import loans
    from tasks.db.statements import unlink_from_users

    load_files(engine, [str(REAL / f"{S}spec-data-user_response.json")])
    load_files(engine, [str(REAL / f"{S}spec-data-loans_response.json")], attach_to="12345")
    with engine.begin() as conn:
        assert all('"user_id"' in extra for extra in conn.execute(select(loans.c.extra)).scalars())
        conn.execute(update(loans).values(loan_status="COMPLETE"))
        ids = conn.execute(select(loans.c.id)).scalars().all()
        assert conn.execute(unlink_from_users("loans"), {"ids": ids, "now": dt.datetime(2026, 12, 1)}).rowcount == 2
        assert conn.execute(select(loans.c.user_id, loans.c.extra)).all() == [(None, None)] * 2
