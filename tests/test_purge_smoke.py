import datetime as dt

from flows.purge_users import PurgeParameters, purge_user_records
from tests.builders import add_user


def test_smoke(engine, prefect_api):
    add_user(engine, "a", purge_date=dt.date(2026, 12, 1))
    add_user(engine, "b", purge_date=dt.date(2026, 12, 1), active_loans=1)
    add_user(engine, "c", purge_date=dt.date(2026, 12, 1), fees_owed=["0.00"])
    s = purge_user_records(parameters=PurgeParameters(as_of=dt.date(2026, 12, 20), max_share=1))
    print(s)
    s = purge_user_records(parameters=PurgeParameters(as_of=dt.date(2026, 12, 20), max_share=1, dry_run=False))
    print(s)
    assert s["purged"] == 2
