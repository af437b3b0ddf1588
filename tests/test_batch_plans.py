"""How PostgreSQL plans the statements of a purge or waive batch and of `policy set`: through the tables'
indexes, for that transaction only (tasks/db/engine.plan_by_ids). With a batch's thousands of ids as
one array the planner took whole-table reads for cheaper than the index probes, and at 1,000,000 users
they made a purge one and a half times slower (BENCHMARKS.md, "Library scale, eighth round")."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.builders import add_user

pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


@pytest.fixture
def settings_seen():
    """enable_seqscan as each statement beginning with a watched text saw it, read in its transaction."""
    seen: dict[str, list[str]] = {}

    def after(conn, cursor, statement, parameters, context, executemany):
        for watched in ("DELETE FROM user_phones", "INSERT INTO fee_transactions"):
            if statement.lstrip().startswith(watched):
                probe = cursor.connection.cursor()
                probe.execute("SELECT current_setting('enable_seqscan')")
                seen.setdefault(watched, []).append(probe.fetchone()[0])
                probe.close()

    event.listen(Engine, "after_cursor_execute", after)
    yield seen
    event.remove(Engine, "after_cursor_execute", after)


def _seqscan(engine) -> str:
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT current_setting('enable_seqscan')").scalar()


def test_a_purge_batch_reaches_its_rows_through_the_indexes_and_nothing_else_does(engine, cli, settings_seen):
    for n in range(3):
        add_user(engine, f"gone{n}", purge_date=dt.date(2026, 1, 15), fees_owed=["1.00"], history_loans=1)

    code, out, err = cli("purge", "--as-of", "2026-12-20", "--max-owed", "5.00", "--batch-size", "2",
                         "--confirm", "--json")

    assert code == 0, err
    assert json.loads(out)["purged"] == 3
    # Every batch's policy and waive statements ran with sequential scans off (2 batches)...
    assert settings_seen["DELETE FROM user_phones"] == ["off", "off"]
    assert settings_seen["INSERT INTO fee_transactions"] and set(settings_seen["INSERT INTO fee_transactions"]) == {"off"}
    # ...and the setting ended with each batch's transaction: the pool's connections plan as before.
    assert _seqscan(engine) == "on"


def test_a_waive_batch_reaches_its_rows_through_the_indexes(engine, cli, settings_seen):
    for n in range(3):
        add_user(engine, f"owes{n}", fees_owed=["2.00"])

    code, out, err = cli("waive", "--max-fine-threshold", "5.00", "--reason", "AMNESTY", "--confirm", "--json")

    assert code == 0, err
    assert json.loads(out)["fines_waived"] == 3
    assert set(settings_seen["INSERT INTO fee_transactions"]) == {"off"}
    assert _seqscan(engine) == "on"


def test_a_stricter_policy_reaches_earlier_purged_users_through_the_indexes(engine, cli, settings_seen):
    assert cli("policy", "set", "keep-fully-reportable")[0] == 0
    add_user(engine, "gone", purge_date=dt.date(2026, 1, 15))
    assert cli("purge", "--as-of", "2026-12-20", "--confirm")[0] == 0
    settings_seen.clear()

    code, out, err = cli("policy", "set", "keep-statistics-remove-id")

    assert code == 0, err
    assert settings_seen["DELETE FROM user_phones"] == ["off"]
    assert _seqscan(engine) == "on"
