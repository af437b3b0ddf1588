"""Find Duplicate Users end to end on SQLite and PostgreSQL, on a small noisy library (3,000 people,
duplicates and look-alikes planted, the truth kept): the planted duplicates are found with high
precision; the dry run writes nothing; the export is accepted by merge --pairs; the review queue's
round trip (proposed, accepted, rejected never proposed again, merged); a cluster of three merged
into one To user in two runs without USER_IN_SEVERAL_PAIRS."""
from __future__ import annotations

import csv
import json

import pandas as pd
import pytest
from sqlalchemy import func, select

from flows.find_duplicates import find_duplicate_users
from flows.merge_users import merge_users
from tasks.db.engine import read_connection, write_transaction
from tasks.db.schema import duplicate_pairs, users
from tasks.devtools.noisy.load import make_noisy_library
from tasks.devtools.noisy.truth import evaluate
from tasks.duplicates.review import read_review_csv, write_review_csv
from tasks.engine.records import utcnow
from tasks.library.review_queue import list_pairs, review
from tasks.reasons import ALREADY_IN_QUEUE, REJECTED_BEFORE, USER_IN_SEVERAL_PAIRS
from tests.runs import run_flow

PEOPLE = 3000


def queue(engine) -> pd.DataFrame:
    with read_connection(engine) as conn:
        return list_pairs(conn)


def set_status(engine, ids, status):
    with write_transaction(engine) as conn:
        review(conn, ids, status, by="test", note=None, now=utcnow())


def test_the_whole_story(engine, prefect_api, tmp_path):
    truth = make_noisy_library(engine, PEOPLE, seed=7)
    export = tmp_path / "pairs.csv"
    with read_connection(engine) as conn:
        users_before = conn.execute(select(func.count()).select_from(users)).scalar()

    # A dry run: the pairs found and exported, nothing queued.
    state, summary = run_flow(find_duplicate_users, export_file=str(export))
    assert state.name == "Dry run", state.message
    assert summary["job"] == "find-duplicate-users" and summary["users_scanned"] == len(truth)
    assert summary["pairs_found"] > 50 and summary["queued"] == summary["pairs_found"]
    assert summary["clusters"] <= summary["pairs_found"]
    assert queue(engine).empty

    found = pd.read_csv(export, dtype=str)
    assert list(found.columns[:3]) == ["from_user", "to_user", "probability"]
    assert len(found) == summary["pairs_found"]
    # Precision and recall of the clusters against the planted truth.
    ids = {f"P{u}": int(u) for u in truth["user_id"]}
    cluster_of = {ids[p]: int(c) for c, a, b in zip(found["cluster"], found["from_user"], found["to_user"]) for p in (a, b)}
    quality = evaluate(truth, cluster_of)
    assert quality["precision"] >= 0.95 and quality["recall"] >= 0.85, quality
    assert quality["lookalikes_joined"].get("twin", {"rate": 0})["rate"] <= 0.2

    # The export is accepted by merge as it is (a dry run); round 1 names no user twice.
    state, merged = run_flow(merge_users, pairs_file=str(export), merge_round=1)
    assert state.name == "Dry run", state.message
    assert USER_IN_SEVERAL_PAIRS not in merged["failed"]
    assert merged["pairs"] == int((found["merge_round"] == "1").sum())

    # A real run queues every pair as proposed; nothing about the users changes.
    state, summary = run_flow(find_duplicate_users, dry_run=False)
    assert state.name == "Completed", state.message
    q = queue(engine)
    assert summary["queued"] == len(q) == len(found) and set(q["status"]) == {"proposed"}
    with read_connection(engine) as conn:
        assert conn.execute(select(func.count()).select_from(users)).scalar() == users_before

    # Review by CSV: reject the first pair, accept the rest.
    review_file = tmp_path / "review.csv"
    write_review_csv(str(review_file), q)
    rows = list(csv.DictReader(review_file.open()))
    rejected_id = int(rows[0]["pair_id"])
    for i, row in enumerate(rows):
        row["decision"] = "reject" if i == 0 else "accept"
    with review_file.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    decisions = read_review_csv(str(review_file))
    set_status(engine, decisions["rejected"], "rejected")
    set_status(engine, decisions["accepted"], "accepted")
    rejected = q[q["pair_id"] == rejected_id].iloc[0]

    # Scanned again: the rejected pair is never proposed again, the others are already queued.
    state, again = run_flow(find_duplicate_users, dry_run=False)
    assert again["queued"] == 0 or set(queue(engine)["status"]) >= {"proposed"}
    assert again["skipped"].get(REJECTED_BEFORE) == 1 and again["skipped"].get(ALREADY_IN_QUEUE, 0) > 0
    q2 = queue(engine)
    same = q2[(q2["user_id_a"] == rejected.user_id_a) & (q2["user_id_b"] == rejected.user_id_b)]
    assert list(same["status"]) == ["rejected"]

    # Merge from the queue, run after run, until no accepted pair is left: one pair per To user per run.
    for _ in range(5):
        if not (queue(engine)["status"] == "accepted").any():
            break
        state, merged = run_flow(merge_users, from_queue=True, dry_run=False, copy_as_internal=True)
        assert state.name in ("Completed", "Completed with failures"), state.message
        assert USER_IN_SEVERAL_PAIRS not in merged["failed"]
    final = queue(engine)
    assert not (final["status"] == "accepted").any()
    assert (final["status"] == "merged").sum() >= len(decisions["accepted"]) - 5
    # A cluster of three or more records ended in one To user: its From users are gone.
    stars = final[final["merge_round"] > 1]
    if not stars.empty:
        to_id = int(stars.iloc[0]["to_user_id"])
        cluster = final[final["to_user_id"] == to_id]
        assert set(cluster["status"]) == {"merged"}
        with read_connection(engine) as conn:
            left = conn.execute(select(users.c.id).where(users.c.id.in_(
                [int(i) for i in cluster["from_user_id"]] + [to_id]))).scalars().all()
        assert left == [to_id]


def test_user_group_scans_and_proposes_only_users_of_those_groups(engine, cli, tmp_path):
    truth = make_noisy_library(engine, PEOPLE, seed=5)
    with read_connection(engine) as conn:
        group_of = dict(conn.execute(select(users.c.primary_id, users.c.user_group)).all())
    chosen = {"UNDERGRAD", "PUBLIC"}
    in_chosen = {int(p[1:]) for p, g in group_of.items() if g in chosen}
    # The library has duplicates outside the groups, which a scan of every user would find.
    person_groups = truth.assign(group=[group_of[f"P{u}"] for u in truth["user_id"]]).groupby("person_id")["group"]
    assert (person_groups.size() > 1).any() and (person_groups.agg(lambda g: not set(g) & chosen)
                                                 [person_groups.size() > 1]).sum() > 10

    export = tmp_path / "pairs.csv"
    code, out, err = cli("find-duplicates", "--user-group", "UNDERGRAD", "--user-group", "PUBLIC",
                         "--export", export, "--json")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["users_scanned"] == len(in_chosen) < len(truth)
    found = pd.read_csv(export, dtype=str)
    assert summary["pairs_found"] == len(found) > 20
    assert {group_of[u] for u in pd.concat([found["from_user"], found["to_user"]])} <= chosen
    # The duplicates inside the groups are found as in a whole scan.
    cluster_of = {int(p[1:]): int(c) for c, a, b in zip(found["cluster"], found["from_user"], found["to_user"])
                  for p in (a, b)}
    quality = evaluate(truth[truth["user_id"].isin(in_chosen)], cluster_of)
    assert quality["precision"] >= 0.95 and quality["recall"] >= 0.85, quality
