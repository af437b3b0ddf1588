"""The review queue's commands: duplicates list / accept / reject / review (CSV), and merge --from-queue
taking one pair per To user per run, marking what it merged."""
from __future__ import annotations

import csv
import json

from tasks.db.engine import read_connection, write_transaction
from tasks.engine.records import utcnow
from tasks.library.review_queue import add_proposed, list_pairs
from tests.builders import add_user


def test_review_commands_and_merge_from_the_queue(engine, cli, tmp_path):
    a, b, c, d, e = (add_user(engine, p) for p in ("A", "B", "C", "D", "E"))
    with write_transaction(engine) as conn:
        add_proposed(conn, [
            {"from_user_id": a, "to_user_id": c, "from_primary_id": "A", "to_primary_id": "C", "probability": 0.99,
             "evidence": "first_name: exact", "merge_refusal": None, "merge_round": 1},
            {"from_user_id": b, "to_user_id": c, "from_primary_id": "B", "to_primary_id": "C", "probability": 0.98,
             "evidence": "first_name: exact", "merge_refusal": None, "merge_round": 2},
            {"from_user_id": d, "to_user_id": e, "from_primary_id": "D", "to_primary_id": "E", "probability": 0.97,
             "evidence": "first_name: nickname", "merge_round": 1, "merge_refusal": None},
        ], "test-run", utcnow())
    code, out, _ = cli("duplicates", "list", "--json")
    pairs = {(p["from_primary_id"], p["to_primary_id"]): p["pair_id"] for p in json.loads(out)}
    assert code == 0 and len(pairs) == 3

    # A spreadsheet review: accept A->C and B->C, reject D->E.
    review = tmp_path / "review.csv"
    assert cli("duplicates", "list", "--status", "proposed", "--csv", review)[0] == 0
    rows = list(csv.DictReader(review.open()))
    for row in rows:
        row["decision"] = "reject" if row["from_user"] == "D" else "accept"
    with review.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert cli("duplicates", "review", review, "--by", "anna")[0] == 0
    assert cli("duplicates", "reject", "999")[0] == 2          # no such pair: said, exit 2

    # merge --from-queue: the star A->C, B->C goes in two runs, one pair per To user each.
    code, out, err = cli("merge", "--from-queue", "--confirm", "--json")
    assert code == 0, err
    first = json.loads(out)
    assert first["merged"] == 1 and first["failed"] == {}
    code, out, err = cli("merge", "--from-queue", "--confirm", "--json")
    assert code == 0 and json.loads(out)["merged"] == 1, err
    assert cli("merge", "--from-queue", "--confirm")[0] == 2   # nothing accepted is left
    with read_connection(engine) as conn:
        queue = list_pairs(conn).set_index("from_primary_id")
    assert queue.loc["A", "status"] == queue.loc["B", "status"] == "merged"
    assert queue.loc["D", "status"] == "rejected" and queue.loc["D", "reviewed_by"] == "anna"
