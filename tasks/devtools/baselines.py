"""The jobs' work as hand-written set-based SQL (sql/baselines/<job>.sql, one transaction): what the
database itself can do, for the scale test and the benchmark to hold a flow's outcome and speed against.
Their parameters are the scenario's (tasks/devtools/scenario.py), so a baseline and its flow do the same."""
from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import column, table, text, update

from tasks.db import schema
from tasks.db.engine import dispose_engines, get_engine, write_transaction
from tasks.db.sql import SQL_DIR
from tasks.db.statements import statistics_of
from tasks.devtools import scenario
from tasks.library.money import to_minor

BASELINE_SQL = SQL_DIR / "baselines"


def split_statements(source: str) -> list[str]:
    """A script's statements (a semicolon ends a line), comment lines removed."""
    body = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*$", body, flags=re.MULTILINE) if s.strip()]


def baseline_statements(job: str) -> list[str]:
    return split_statements((BASELINE_SQL / f"{job}.sql").read_text(encoding="utf-8"))


@dataclass
class Timed:
    seconds: float
    detail: dict[str, Any]


# The rows sql/baselines/anonymize.sql unlinked, with the users they belonged to.
_ANONYMIZED = {name: table(f"bench_anon_{name}", column("id"), column("user_id"))
               for name in ("loans", "requests", "fees")}


def _anonymize_statistics() -> list:
    """After sql/baselines/anonymize.sql: the statistical categories of each unlinked row's user, in the
    one wording that differs by dialect (a JSON list, rendered by SQLAlchemy as the flow's is), then the
    script's work tables go."""
    statements: list = []
    for name, done in _ANONYMIZED.items():
        target = schema.metadata.tables[name]
        statements.append(update(target).where(target.c.id == done.c.id)
                          .values(anon_statistics=statistics_of(done.c.user_id)))
    return statements + [text(f"DROP TABLE {done.name}") for done in _ANONYMIZED.values()]


# What runs after a baseline's script, in its transaction, where part of the work is worded per dialect.
_AFTER_SCRIPT = {"anonymize": _anonymize_statistics}


def run_baseline(url: str, job: str, params: dict[str, Any]) -> Timed:
    """Run the baseline of `job` (purge, waive, anonymize) in one transaction; the time includes the commit."""
    engine = get_engine(url)
    started = time.perf_counter()
    with write_transaction(engine) as conn:
        for statement in baseline_statements(job):
            used = {k: v for k, v in params.items() if f":{k}" in statement}
            conn.execute(text(statement), used)
        for statement in _AFTER_SCRIPT.get(job, list)():
            conn.execute(statement)
    seconds = time.perf_counter() - started
    dispose_engines()
    return Timed(seconds, {})


def _noon() -> dt.datetime:
    return dt.datetime.combine(scenario.TODAY, dt.time(12))


def purge_baseline_params() -> dict[str, Any]:
    return {"cutoff": scenario.TODAY, "max_owed_minor": to_minor(scenario.PURGE_MAX_OWED), "now": _noon(),
            "run_id": str(uuid.uuid4()), "policy": scenario.DEFAULT_POLICY, "reason": "USER_PURGED",
            "comment": "waived by Purge User Records"}


def waive_baseline_params() -> dict[str, Any]:
    return {"threshold_minor": to_minor(scenario.WAIVE_THRESHOLD), "now": _noon(), "run_id": str(uuid.uuid4()),
            "reason": scenario.WAIVE_REASON, "comment": scenario.WAIVE_COMMENT}


def anonymize_baseline_params() -> dict[str, Any]:
    cutoff = scenario.TODAY - dt.timedelta(days=scenario.ANONYMIZE_DAYS)
    return {"loan_cutoff": cutoff, "request_cutoff": cutoff, "fee_cutoff": cutoff, "keep_last": 0,
            "now": _noon(), "run_id": str(uuid.uuid4())}
