"""Merge Users end to end on SQLite and PostgreSQL: what moves, the clash rules, segment types, the
validation reasons, dry runs, pair files, and the To user's export after a merge."""
from __future__ import annotations

import io
import json
from collections import Counter

import pytest
from sqlalchemy import func, insert, select

from flows.merge_users import merge_users
from tasks.merge.parameters import MergePair
from tasks.alma.export import export_users
from tasks.db.engine import write_transaction
from tasks.errors import JobFailed
from tasks.db.schema import (fee_transactions, fees, job_events, loans, requests, user_addresses, user_attachments,
                          user_blocks,
                          user_emails, user_identifiers, user_notes, user_phones, user_proxies, user_roles,
                          user_statistics, users)
from tests.builders import add_user, ledger_errors

ALL_KINDS = ("loans", "requests", "fees", "fee_transactions", "addresses", "emails", "phones", "identifiers",
             "notes", "blocks", "statistics", "attachments", "roles", "proxy_for", "proxied_by")


def add_full_user(engine, primary_id: str, *, account_type: str = "EXTERNAL", proxy_for: tuple[str, ...] = (),
                  scope: str = "BRANCH") -> int:
    """A patron with something of every kind: loans (active and history), requests, fees with
    transactions, preferred address/email/phone, two identifiers, a note, block, statistic,
    attachment, Patron roles in MAIN and `scope`, and proxy rows for `proxy_for`."""
    user_id = add_user(engine, primary_id, account_type=account_type, active_loans=1, history_loans=1,
                       active_requests=1, history_requests=1, fees_owed=["2.50"], closed_fees=1)
    with write_transaction(engine) as conn:
        conn.execute(insert(user_emails).values(user_id=user_id, email_address=f"{primary_id}@example.org",
                                                email_types="personal", preferred=True, segment_type="External"))
        conn.execute(insert(user_phones).values(user_id=user_id, phone_number=f"+47 {user_id:08d}",
                                                phone_types="mobile", preferred=True, preferred_sms=True,
                                                segment_type="External"))
        conn.execute(insert(user_identifiers).values(user_id=user_id, id_type="UNIV_ID", value=f"U-{primary_id}",
                                                     status="ACTIVE", segment_type="External"))
        conn.execute(insert(user_blocks).values(user_id=user_id, block_type="GENERAL", block_description="GLOBAL",
                                                block_status="ACTIVE", block_note=f"block on {primary_id}",
                                                segment_type="External"))
        conn.execute(insert(user_statistics).values(user_id=user_id, statistic_category=f"CAT-{primary_id}",
                                                    category_type="TYPE", segment_type="External"))
        conn.execute(insert(user_attachments).values(user_id=user_id, file_name=f"{primary_id}.pdf", type="ID",
                                                     content=b"%PDF"))
        conn.execute(insert(user_roles).values(user_id=user_id, role_type="200", scope=scope, status="ACTIVE"))
        for target in proxy_for:
            conn.execute(insert(user_proxies).values(user_id=user_id, proxy_for_primary_id=target))
    return user_id


def exported(engine, primary_id: str) -> dict:
    out = io.StringIO()
    export_users(engine, [primary_id], out)
    return json.loads(out.getvalue())


def user_exists(engine, primary_id: str) -> bool:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(users).where(users.c.primary_id == primary_id)).scalar() == 1


def merge(pairs, **values):
    values.setdefault("dry_run", False)
    return merge_users(
        pairs=[MergePair(from_user=f, to_user=t) for f, t in pairs], **values)


def codes(items, field):
    return [(i[field]["value"] if isinstance(i[field], dict) else i[field]) for i in items]


def test_merge_moves_everything_once_and_keeps_the_to_users_preferences(engine, prefect_api):
    add_full_user(engine, "dup", proxy_for=("kid", "keep"), scope="BRANCH")
    add_full_user(engine, "keep", proxy_for=("kid", "dup"), scope="WEST")
    add_user(engine, "kid")
    helper = add_user(engine, "helper")
    with write_transaction(engine) as conn:
        conn.execute(insert(user_proxies).values(user_id=helper, proxy_for_primary_id="dup"))
    before_keep, before_dup = exported(engine, "keep"), exported(engine, "dup")

    preview = merge([("dup", "keep")], dry_run=True)
    assert exported(engine, "keep") == before_keep and exported(engine, "dup") == before_dup
    done = merge([("dup", "keep")])

    expected_moved = {
        "loans": 2, "requests": 2, "fees": 2, "fee_transactions": 1, "addresses": 1, "emails": 1, "phones": 1,
        "identifiers": 2, "notes": 1, "blocks": 1, "statistics": 1, "attachments": 1,
        "roles": 1,        # Patron in BRANCH moves; Patron in MAIN the To user already holds
        "proxy_for": 0,    # kid: keep already acts for kid; keep: no proxy for oneself
        "proxied_by": 1,   # helper now acts for keep; keep acting for dup is dropped
    }
    for summary, dry in [(preview, True), (done, False)]:
        assert summary["job"] == "merge-users" and summary["dry_run"] is dry
        assert (summary["pairs"], summary["merged"], summary["failed"], summary["skipped"]) == (1, 1, {}, {})
        assert summary["moved"] == expected_moved

    assert not user_exists(engine, "dup")
    keep = exported(engine, "keep")
    for field, key in [("item_loan", "loan_id"), ("user_request", "request_id"), ("fee", "id"),
                       ("attachment", "file_name"), ("user_note", "note_text"), ("user_block", "block_note")]:
        got = [item[key] for item in keep[field]]
        want = [item[key] for item in before_keep[field] + before_dup[field]]
        assert sorted(got) == sorted(want), field
    assert sorted(codes(keep["user_statistic"], "statistic_category")) == ["CAT-dup", "CAT-keep"]
    assert sorted(i["value"] for i in keep["user_identifier"]) == ["B-dup", "B-keep", "U-dup", "U-keep"]
    moved_fee = next(f for f in keep["fee"] if f["id"] in {x["id"] for x in before_dup["fee"]} and f["transaction"])
    assert moved_fee["transaction"] == next(f for f in before_dup["fee"] if f["id"] == moved_fee["id"])["transaction"]
    assert sorted((r["role_type"]["value"], r["scope"]["value"]) for r in keep["user_role"]) == [
        ("200", "BRANCH"), ("200", "MAIN"), ("200", "WEST")]
    assert sorted(p["primary_id"] for p in keep["proxy_for_user"]) == ["kid"]
    assert [p["primary_id"] for p in exported(engine, "helper")["proxy_for_user"]] == ["keep"]
    contact = keep["contact_info"]
    for kind, key in [("address", "line1"), ("email", "email_address"), ("phone", "phone_number")]:
        assert len(contact[kind]) == 2, kind
        preferred = [c for c in contact[kind] if c["preferred"]]
        assert preferred == [c for c in before_keep["contact_info"][kind]], kind
    assert [p["phone_number"] for p in contact["phone"] if p["preferred_sms"]] == [
        before_keep["contact_info"]["phone"][0]["phone_number"]]
    assert ledger_errors(engine) == []
    with engine.connect() as conn:
        events = Counter(conn.execute(select(job_events.c.event).where(job_events.c.run_id == done["run_id"])).scalars())
        assert events == {"USER_MERGED": 1, "USER_DELETED": 1}
        # Nothing of the From user is left anywhere, not even a proxy pointing at it.
        assert conn.execute(select(func.count()).select_from(user_proxies)
                            .where(user_proxies.c.proxy_for_primary_id == "dup")).scalar() == 0

    rerun = merge([("dup", "keep")])
    assert (rerun["merged"], rerun["failed"]) == (0, {"USER_NOT_FOUND": 1})
    assert exported(engine, "keep") == keep


# Two complementary choices: every segment is merged in one run and left out in the other.
@pytest.mark.parametrize("segments", [("contacts", "notes", "statistics", "roles"),
                                      ("identifiers", "blocks", "attachments", "proxies")])
def test_only_the_chosen_segments_move_the_rest_goes_with_the_from_user(engine, prefect_api, segments):
    from_id = add_full_user(engine, "dup", proxy_for=("kid",))
    to_id = add_user(engine, "keep")
    add_user(engine, "kid")
    helper = add_user(engine, "helper")
    with write_transaction(engine) as conn:
        conn.execute(insert(user_proxies).values(user_id=helper, proxy_for_primary_id="dup"))
    summary = merge([("dup", "keep")], segments=list(segments))

    kinds = {"contacts": {"addresses", "emails", "phones"}, "proxies": {"proxy_for", "proxied_by"}}
    chosen = set().union(*(kinds.get(s, {s}) for s in segments))
    always = {"loans", "requests", "fees", "fee_transactions"}
    assert {k for k, v in summary["moved"].items() if v} == always | chosen
    tables = {"addresses": user_addresses, "emails": user_emails, "phones": user_phones,
              "identifiers": user_identifiers, "notes": user_notes, "blocks": user_blocks,
              "statistics": user_statistics, "attachments": user_attachments, "roles": user_roles,
              "proxy_for": user_proxies, "loans": loans, "requests": requests, "fees": fees}
    with engine.connect() as conn:
        # Everything the From user had is either the To user's now or gone with the From user.
        for kind, tbl in tables.items():
            left = conn.execute(select(func.count()).select_from(tbl).where(tbl.c.user_id == from_id)).scalar()
            assert left == 0, kind
        kept = {kind: conn.execute(select(func.count()).select_from(tbl).where(tbl.c.user_id == to_id)).scalar()
                for kind, tbl in tables.items()}
        # add_user gives the To user one address, identifier, note and role of its own.
        own = {"addresses": 1, "identifiers": 1, "notes": 1, "roles": 1}
        for kind in tables:
            assert kept[kind] == own.get(kind, 0) + summary["moved"][kind], kind
        assert conn.execute(select(func.count()).select_from(fee_transactions)).scalar() == 1
        helper_for = conn.execute(select(user_proxies.c.proxy_for_primary_id)
                                  .where(user_proxies.c.user_id == helper)).scalars().all()
    assert helper_for == (["keep"] if "proxies" in segments else [])
    assert ledger_errors(engine) == []


def test_copied_segments_get_the_segment_type_the_pair_asks_for(engine, prefect_api, tmp_path, cli):
    for primary_id, account_type in [("i1", "INTERNAL"), ("e1", "EXTERNAL"), ("i2", "INTERNAL"), ("e2", "EXTERNAL"),
                                     ("e3", "EXTERNAL"), ("i3", "INTERNAL"), ("e4", "EXTERNAL"), ("e5", "EXTERNAL"),
                                     ("e6", "EXTERNAL"), ("i6", "INTERNAL"), ("i7", "INTERNAL"), ("i8", "INTERNAL")]:
        add_user(engine, primary_id, account_type=account_type)
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("from_user,to_user,copy_as_internal\n"
                     "i1,e1,\n"          # INTERNAL -> EXTERNAL: the run's --copy-as-internal
                     "i2,e2,false\n"     # the pair's own statement wins
                     "e3,i3,\n"
                     "e4,e5,FALSE\n")
    code, out, err = cli("merge", "--pairs", pairs, "--segments", "notes,identifiers", "--copy-as-internal",
                         "--confirm", "--json")
    assert code == 0, err
    assert json.loads(out)["merged"] == 4
    unstated = merge([("e6", "i6"), ("i7", "i8")])   # no copy-as-internal: the To user's account type
    assert unstated["merged"] == 2
    expected = {"e1": "Internal", "e2": "External", "i3": "Internal", "e5": "External", "i6": "Internal",
                "i8": "Internal"}
    for to_user, segment_type in expected.items():
        document = exported(engine, to_user)
        moved = [n for n in document["user_note"] if n["note_text"] != f"note on {to_user}"]
        moved += [i for i in document["user_identifier"] if i["value"] != f"B-{to_user}"]
        assert len(moved) == 2 and {m["segment_type"] for m in moved} == {segment_type}, to_user


def test_a_pair_list_with_bad_pairs_merges_the_good_ones_and_says_why_not_the_others(engine, prefect_api,
                                                                                     tmp_path, cli):
    add_user(engine, "good1", active_loans=1)
    add_user(engine, "keep1")
    add_user(engine, "good2", fees_owed=["1.00"])
    add_user(engine, "keep2")
    add_user(engine, "staff", roles=["200", "21"], active_loans=1)
    add_user(engine, "t-staff")
    add_user(engine, "prot", protected=True, active_loans=1)
    add_user(engine, "t-prot")
    add_user(engine, "f-prot")
    add_user(engine, "prot-to", protected=True)
    add_user(engine, "int", account_type="INTERNAL", active_loans=1)
    add_user(engine, "ext")
    add_user(engine, "c1", active_loans=1)
    add_user(engine, "c2", active_loans=1)
    add_user(engine, "c3")
    add_user(engine, "same", active_loans=1)
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("from_user,to_user\n" + "\n".join([
        "good1,keep1", "ghost,keep1x", "staff,t-staff", "prot,t-prot", "f-prot,prot-to", "int,ext",
        "c1,c2", "c2,c3", "same,same", "good2,keep2"]) + "\n")

    code, out, err = cli("merge", "--pairs", pairs, "--json")
    assert code == 0, err
    dry = json.loads(out)
    code, out, err = cli("merge", "--pairs", pairs, "--batch-size", "1", "--confirm", "--json")
    assert code == 0, err
    real = json.loads(out)
    for summary in (dry, real):
        assert summary["pairs"] == 10 and summary["merged"] == 2 and summary["skipped"] == {}
        assert summary["failed"] == {"USER_NOT_FOUND": 1, "FROM_NOT_PATRON_ONLY": 1, "PROTECTED": 2,
                                     "COPY_AS_INTERNAL_REQUIRED": 1, "USER_IN_SEVERAL_PAIRS": 2, "SAME_USER": 1}
        assert (summary["moved"]["loans"], summary["moved"]["fees"]) == (1, 1)
    assert real["moved"] == dry["moved"]
    assert not user_exists(engine, "good1") and not user_exists(engine, "good2")
    for kept in ["staff", "prot", "f-prot", "int", "c1", "c2", "same", "keep1", "keep2"]:
        assert user_exists(engine, kept), kept
    for untouched in ["staff", "prot", "int", "c1", "c2", "same"]:
        assert len(exported(engine, untouched)["item_loan"]) == 1, untouched
    assert len(exported(engine, "keep1")["item_loan"]) == 1

    code, out, _ = cli("merge", "--pairs", pairs, "--confirm")
    assert code == 0
    assert "## Per pair" in out and "## Sample of who is skipped, and why" in out
    assert "| ghost -> keep1x | USER_NOT_FOUND |" in out and "| good1 -> keep1 | USER_NOT_FOUND |" in out


def test_a_failing_batch_leaves_no_half_merge(engine, prefect_api, monkeypatch):
    add_full_user(engine, "dup")
    add_user(engine, "keep")
    before = {pid: exported(engine, pid) for pid in ["dup", "keep"]}
    import tasks.merge.steps as merge_module

    real_sql_for = merge_module.sql_for

    def failing_sql_for(conn, name):
        if name == "merge/delete_from_users":
            raise RuntimeError("simulated failure after everything had moved")
        return real_sql_for(conn, name)

    monkeypatch.setattr(merge_module, "sql_for", failing_sql_for)
    with pytest.raises(JobFailed, match="simulated failure"):
        merge([("dup", "keep")])
    assert {pid: exported(engine, pid) for pid in ["dup", "keep"]} == before


def test_the_command_line_refuses_bad_parameters_and_files_naming_the_problem(tmp_path, monkeypatch, cli):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/library.db")
    bad_bool = tmp_path / "bad_bool.csv"
    bad_bool.write_text("from_user,to_user,copy_as_internal\na,b,true\nc,d,maybe\n")
    no_column = tmp_path / "no_column.csv"
    no_column.write_text("from_user,keep\na,b\n")
    empty_cell = tmp_path / "empty_cell.csv"
    empty_cell.write_text("from_user,to_user\na,b\n,d\n")
    cases = [
        (["--from", "a", "--to", "b", "--segments", "notes,pets"], ["'pets'", "valid segments:", "contacts, identifiers"]),
        (["--from", "a"], ["--from and --to"]),
        (["--from", "a", "--to", "b", "--pairs", bad_bool], ["not both"]),
        ([], ["--from and --to", "--pairs"]),
        (["--from", "a", "--to", "b", "--batch-size", "0"], ["--batch-size", "'0'"]),
        (["--pairs", tmp_path / "missing.csv"], ["no such file", "missing.csv"]),
        (["--pairs", bad_bool], ["line 3", "copy_as_internal", "'maybe'"]),
        (["--pairs", no_column], ["missing column(s) to_user", "unknown column(s) keep"]),
        (["--pairs", empty_cell], ["line 3", "from_user is empty"]),
    ]
    for args, fragments in cases:
        code, out, err = cli("merge", *args)
        assert code == 2, (args, err)
        assert out == ""
        for fragment in fragments:
            assert fragment in err, (args, fragment, err)
