"""A real run's batches start while its selection is still read (tasks/engine/runner.streams): the
batches are exactly those of the whole selection, a unit is never split between two, and the run's
outcome is the same as when the library is read first."""
from __future__ import annotations

import itertools
from types import SimpleNamespace

import pandas as pd
import pytest

import tasks.engine.selection
from flows.waive_fines import bulk_fine_waiving
from tasks.engine.batches import split_batches
from tasks.engine.selection import StreamedSelection
from tasks.engine.tally import SAMPLE_ROWS, Tally, make_preview
from tasks.reasons import ELIGIBLE
from tests.builders import add_fee, add_user, ledger_errors

AS_OF = "2026-12-20"


JOB = SimpleNamespace(key="user_id", label="primary_id", sample_columns=("fee",),
                      # Which of a unit's rows is decided with which: a unit's first row is left out
                      # when the unit's rows were decided apart.
                      decide=lambda chunk, parameters, run: chunk.assign(outcome=[
                          ELIGIBLE if u % 5 and chunk["user_id"].eq(u).sum() == 1 + u % 3 else "LEFT_OUT"
                          for u in chunk["user_id"]]),
                      count=lambda eligible: {"users": int(eligible["user_id"].nunique()), "fees": len(eligible)})


def streamed(chunks: list[pd.DataFrame]) -> StreamedSelection:
    selection = StreamedSelection.__new__(StreamedSelection)
    selection.job, selection.run, selection.parameters = JOB, None, None
    selection._held = SimpleNamespace(close=lambda: None)
    selection._chunks = iter(chunks)
    selection.tally = Tally(JOB)
    return selection


@pytest.mark.parametrize("chunk_rows, batch_size", [(1, 1), (3, 2), (4, 3), (7, 5), (100, 4)])
def test_streamed_batches_are_the_whole_selections_and_never_split_a_unit(chunk_rows, batch_size):
    # Users with 1-3 rows each (fees), ordered by user, cut into chunks wherever the rows fall.
    rows = pd.DataFrame({"user_id": [u for u in range(1, 30) for _ in range(1 + u % 3)]})
    rows["fee"] = range(len(rows))
    rows["primary_id"] = "p" + rows["user_id"].astype(str)
    chunks = [rows.iloc[i:i + chunk_rows] for i in range(0, len(rows), chunk_rows)]
    selection = streamed(chunks)
    got = list(selection.batches(batch_size))
    decisions = JOB.decide(rows, None, None)   # the whole selection decided at once
    expected = split_batches(decisions[decisions["outcome"] == ELIGIBLE], "user_id", batch_size)
    assert [b["fee"].tolist() for b in got] == [b["fee"].tolist() for b in expected]
    for a, b in itertools.combinations(got, 2):
        assert not set(a["user_id"]) & set(b["user_id"])
    # The preview tallied chunk by chunk is the one of the whole selection.
    tallied, whole = selection.preview(), make_preview(JOB, decisions)
    assert (tallied.counts, tallied.eligible_units, tallied.skipped) == (whole.counts, whole.eligible_units, whole.skipped)
    assert tallied.affected.equals(whole.affected) and tallied.left_out.equals(whole.left_out)
    assert len(tallied.affected) == min(SAMPLE_ROWS, whole.eligible_units)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_streamed_waive_run_does_what_a_dry_run_promised(engine, prefect_api, monkeypatch):
    users = [add_user(engine, f"u{i}") for i in range(9)]
    with engine.begin() as conn:
        for i, user in enumerate(users):
            for amount in ("1.00", "2.00", "3.00")[: 1 + i % 3]:
                add_fee(conn, user, amount)
        add_fee(conn, users[4], "90.00")   # above the threshold in all: left out
    # Four rows a chunk: users' fees straddle chunks; two users a batch.
    monkeypatch.setattr(tasks.engine.selection.read_chunks, "__defaults__", (4,))
    opened = []
    real_init = StreamedSelection.__init__
    monkeypatch.setattr(StreamedSelection, "__init__",
                        lambda self, *a, **k: (opened.append(1), real_init(self, *a, **k))[1])
    params = dict(max_fine_threshold="10", waive_reason="AMNESTY", as_of=AS_OF, batch_size=2)
    promised = bulk_fine_waiving(**params, dry_run=True)   # previewed chunk by chunk too
    assert opened == [1]
    done = bulk_fine_waiving(**params, dry_run=False)
    assert opened == [1, 1]
    for key in ("users_considered", "users_waived", "fines_waived", "amount_waived", "amount_waived_by_type",
                "skipped"):
        assert done[key] == promised[key], key
    assert (done["users_waived"], done["skipped"]) == (8, {"ABOVE_FINE_THRESHOLD": 1})
    assert ledger_errors(engine) == []
