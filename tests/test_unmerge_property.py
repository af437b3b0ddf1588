"""Property: for any small library and any set of disjoint pairs, segments and copy-as-internal, merging
and then undoing the merge leaves every table as it was, row for row (audit tables apart). SQLite, a
fresh database per example (tests/test_unmerge_flow.py covers both databases by example)."""
from __future__ import annotations

import os
import tempfile

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert

from flows.merge_users import merge_users
from tasks.db.engine import dispose_engines, get_engine, write_transaction
from tasks.db.schema import (user_addresses, user_attachments, user_blocks, user_emails, user_identifiers,
                             user_phones, user_proxies, user_roles, user_statistics)
from tasks.library.init_db import init_db
from tasks.merge.parameters import MergePair
from tasks.segments import SEGMENTS
from tests.builders import add_user
from tests.test_unmerge_flow import library, unmerge

user_shape = st.fixed_dictionaries({
    "account_type": st.sampled_from(["INTERNAL", "EXTERNAL"]),
    "active_loans": st.integers(0, 1), "history_loans": st.integers(0, 2),
    "active_requests": st.integers(0, 1), "history_requests": st.integers(0, 1),
    "fees_owed": st.lists(st.sampled_from(["1.00", "2.50"]), max_size=2), "closed_fees": st.integers(0, 1),
    "emails": st.lists(st.booleans(), max_size=2),          # preferred flags
    "phones": st.lists(st.tuples(st.booleans(), st.booleans()), max_size=2),
    "extra_address_preferred": st.booleans(),
    "identifiers": st.integers(0, 2), "block": st.booleans(), "statistic": st.booleans(),
    "attachment": st.booleans(), "west_role": st.booleans(),
})


def build(engine, shapes, proxies) -> list[str]:
    ids = []
    for n, shape in enumerate(shapes):
        pid = f"u{n}"
        simple = {k: shape[k] for k in ("account_type", "active_loans", "history_loans", "active_requests",
                                         "history_requests", "fees_owed", "closed_fees")}
        user_id = add_user(engine, pid, **simple)
        ids.append(user_id)
        with write_transaction(engine) as conn:
            conn.execute(insert(user_addresses).values(user_id=user_id, line1=f"{n} Side St",
                                                       preferred=shape["extra_address_preferred"],
                                                       segment_type="Internal"))
            for k, preferred in enumerate(shape["emails"]):
                conn.execute(insert(user_emails).values(user_id=user_id, email_address=f"{pid}.{k}@x.org",
                                                        preferred=preferred, segment_type="External"))
            for k, (preferred, sms) in enumerate(shape["phones"]):
                conn.execute(insert(user_phones).values(user_id=user_id, phone_number=f"{n}-{k}",
                                                        preferred=preferred, preferred_sms=sms))
            for k in range(shape["identifiers"]):
                conn.execute(insert(user_identifiers).values(user_id=user_id, id_type="UNIV_ID",
                                                             value=f"{pid}-{k}", segment_type="Internal"))
            if shape["block"]:
                conn.execute(insert(user_blocks).values(user_id=user_id, block_type="GENERAL", block_note=pid))
            if shape["statistic"]:
                conn.execute(insert(user_statistics).values(user_id=user_id, statistic_category=pid))
            if shape["attachment"]:
                conn.execute(insert(user_attachments).values(user_id=user_id, file_name=f"{pid}.pdf",
                                                             content=bytes([n, 0, 255])))
            if shape["west_role"]:
                conn.execute(insert(user_roles).values(user_id=user_id, role_type="200", scope="WEST"))
    with write_transaction(engine) as conn:
        for a, b in proxies:
            conn.execute(insert(user_proxies).values(user_id=ids[a], proxy_for_primary_id=f"u{b}"))
    return [f"u{n}" for n in range(len(shapes))]


@st.composite
def scenarios(draw):
    shapes = draw(st.lists(user_shape, min_size=2, max_size=6))
    order = draw(st.permutations(range(len(shapes))))
    n_pairs = draw(st.integers(1, len(shapes) // 2))
    pairs = [(order[2 * k], order[2 * k + 1]) for k in range(n_pairs)]
    candidates = [(a, b) for a in range(len(shapes)) for b in range(len(shapes)) if a != b]
    proxies = draw(st.lists(st.sampled_from(candidates), unique=True, max_size=5))
    segments = draw(st.lists(st.sampled_from(SEGMENTS), min_size=1, unique=True))
    copies = draw(st.lists(st.booleans(), min_size=n_pairs, max_size=n_pairs))
    undo_only = draw(st.booleans())
    return shapes, pairs, proxies, segments, copies, undo_only


PLAIN_USER = {"account_type": "INTERNAL", "active_loans": 0, "history_loans": 0, "active_requests": 0,
              "history_requests": 0, "fees_owed": [], "closed_fees": 0, "emails": [], "phones": [],
              "extra_address_preferred": False, "identifiers": 0, "block": False, "statistic": False,
              "attachment": False, "west_role": False}


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(scenario=scenarios())
# Found with --hypothesis-seed=1: u1 acts for u3 (both From users) and for u0 (u3's To user); the merge
# counted the first row as moved to u2 though it was then deleted (tests/test_unmerge_flow.py, on both
# databases: from-acts-for-from-and-its-to).
@example(scenario=([PLAIN_USER] * 4, [(1, 2), (3, 0)], [(1, 3), (1, 2), (1, 0)], ["proxies"], [False, False],
                   False))
def test_merge_then_unmerge_is_the_identity_on_any_small_library(prefect_api, scenario):
    shapes, pairs, proxies, segments, copies, undo_one_by_one = scenario
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/library.db"
        saved = os.environ.get("DATABASE_URL")
        os.environ["DATABASE_URL"] = url
        try:
            engine = get_engine(url)
            init_db(engine)
            names = build(engine, shapes, proxies)
            before = library(engine)
            merged = merge_users(dry_run=False, segments=segments, pairs=[
                MergePair(from_user=names[f], to_user=names[t], copy_as_internal=c)
                for (f, t), c in zip(pairs, copies)])
            assert merged["merged"] == len(pairs), merged
            if undo_one_by_one:
                for f, _ in reversed(pairs):
                    assert unmerge(merged["run_id"], [names[f]])["unmerged"] == 1
            else:
                done = unmerge(merged["run_id"])
                assert done["unmerged"] == len(pairs), done
                assert done["moved_back"] == merged["moved"]
            assert library(engine) == before
        finally:
            dispose_engines()
            if saved is None:
                os.environ.pop("DATABASE_URL", None)
            else:
                os.environ["DATABASE_URL"] = saved
