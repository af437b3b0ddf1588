"""The library-scale scenario that tests/test_scale.py and benchmarks/run.py share: the demo library it
runs on, the jobs' command lines (a nightly purge that also clears small debts, an amnesty for users
owing up to 25.00, merging the demo's duplicate pairs, anonymising a year's history) and the pairs to merge."""
from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import text

from tasks.db.engine import dispose_engines, get_engine
from tasks.devtools.databases import is_sqlite
from tasks.devtools.demo import make_demo_library
from tasks.library.init_db import init_db

TODAY = dt.date(2026, 12, 20)
SEED = 42
PURGE_MAX_OWED = "50.00"
WAIVE_THRESHOLD = "25.00"
WAIVE_REASON = "AMNESTY"
WAIVE_COMMENT = "Winter amnesty"
DEFAULT_POLICY = "keep-statistics-remove-id"
PURGE_ARGS = ["purge", "--as-of", TODAY.isoformat(), "--max-owed", PURGE_MAX_OWED, "--confirm", "--json"]
WAIVE_ARGS = ["waive", "--as-of", TODAY.isoformat(), "--max-fine-threshold", WAIVE_THRESHOLD,
              "--reason", WAIVE_REASON, "--comment", WAIVE_COMMENT, "--confirm", "--json"]
# Anonymise loan history: what a library keeps linked for a year (loans, requests, fees alike).
ANONYMIZE_DAYS = 365
ANONYMIZE_ARGS = ["anonymize", "--as-of", TODAY.isoformat(), "--loan-days", str(ANONYMIZE_DAYS),
                  "--request-days", str(ANONYMIZE_DAYS), "--fee-days", str(ANONYMIZE_DAYS), "--confirm", "--json"]
MERGE_ARGS = ["merge", "--segments", "all", "--copy-as-internal", "--confirm", "--json"]


def build_library(url: str, users: int, seed: int = SEED) -> dict[str, int]:
    """A fresh demo library of `users` in the (empty, existing or creatable) database `url`."""
    engine = get_engine(url)
    init_db(engine)
    counts = make_demo_library(engine, users=users, seed=seed, today=TODAY)
    if not is_sqlite(url):
        # Fresh statistics, as a library database that has been running for a while has them.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    dispose_engines()
    return counts


def duplicate_pairs(url: str, limit: int) -> pd.DataFrame:
    """Up to `limit` pairs of demo duplicates that Merge Users accepts: the same names and birth date
    on exactly two live, unprotected users, the later one (the duplicate) holding only the Patron role."""
    with get_engine(url).connect() as conn:
        people = pd.read_sql(text(
            "SELECT id, primary_id, first_name, middle_name, last_name, birth_date, protected, "
            "(SELECT COUNT(*) FROM user_roles r WHERE r.user_id = u.id AND r.role_type <> '200') AS other_roles "
            "FROM users u WHERE purged_at IS NULL AND birth_date IS NOT NULL ORDER BY id"), conn)
    dispose_engines()
    keys = ["first_name", "middle_name", "last_name", "birth_date"]
    people[keys] = people[keys].astype(object).where(people[keys].notna(), "").astype(str)
    groups = people.groupby(keys, sort=False, dropna=False)["id"].transform("size")
    twins = people[groups == 2].sort_values("id")
    first = twins.drop_duplicates(keys, keep="first").set_index(keys)
    last = twins.drop_duplicates(keys, keep="last").set_index(keys)
    pairs = last.join(first, lsuffix="_from", rsuffix="_to").reset_index()
    ok = (~pairs["protected_from"].astype(bool) & ~pairs["protected_to"].astype(bool)
          & (pairs["other_roles_from"] == 0))
    pairs = pairs[ok].sort_values("id_from").head(limit)
    return pairs.rename(columns={"primary_id_from": "from_user", "primary_id_to": "to_user"})[
        ["from_user", "to_user", "id_from", "id_to"]].reset_index(drop=True)
