"""`python -m flows history`: what ran, when, with what, and what it did."""
import datetime as dt
import json

from tests.builders import add_user

AS_OF = "2026-12-20"


def test_history_lists_runs_newest_first_with_parameters_and_counts(engine, cli):
    add_user(engine, "gone", purge_date=dt.date(2026, 12, 1), fees_owed=["4.50"])
    add_user(engine, "borrowing", purge_date=dt.date(2026, 12, 1), active_loans=1)
    add_user(engine, "staying", purge_date=None)
    assert cli("purge", "--as-of", AS_OF, "--max-share", "1", "--max-owed", "5", "--json")[0] == 0
    assert cli("purge", "--as-of", AS_OF, "--max-share", "1", "--max-owed", "5", "--grace-period-days", "3", "--confirm", "--json")[0] == 0

    code, out, err = cli("history", "--json")
    assert code == 0, err
    runs = json.loads(out)
    assert [(r["job"], r["dry_run"], r["status"]) for r in runs] == [
        ("purge-user-records", False, "COMPLETED"), ("purge-user-records", True, "COMPLETED")]
    real, dry = runs
    assert real["parameters"]["grace_period_days"] == 3 and dry["parameters"]["grace_period_days"] == 0
    assert real["as_of"] == AS_OF and real["started_at"] > dry["started_at"] and real["finished_at"]
    assert real["summary"]["amount_waived"] == "4.50"
    assert real["summary"]["skipped"] == {"ACTIVE_LOANS": 1}
    assert dry["summary"]["purged"] == 1 and dry["summary"]["dry_run"] is True

    code, out, _ = cli("history", "--limit", "1", "--json")
    assert [r["run_id"] for r in json.loads(out)] == [real["run_id"]]
    code, out, _ = cli("history", "--job", "bulk-fine-waiving", "--json")
    assert (code, json.loads(out)) == (0, [])

    code, out, _ = cli("history")
    assert code == 0
    assert out.count("purge-user-records") == 2 and "REAL" in out and "dry run" in out
    for shown in ("purged=1", "amount_waived=4.50", "grace_period_days=3", "ACTIVE_LOANS=1", AS_OF):
        assert shown in out
    assert real["run_id"] in out


def test_history_refuses_a_bad_limit(cli, db_url):
    code, _, err = cli("history", "--limit", "zero")
    assert code == 2 and "--limit" in err
