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

from sqlalchemy import text

from tasks.db.engine import dispose_engines, get_engine, write_transaction
from tasks.db.sql import SQL_DIR
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


def run_baseline(url: str, job: str, params: dict[str, Any]) -> Timed:
    """Run the baseline of `job` (purge, waive) in one transaction; the time includes the commit."""
    engine = get_engine(url)
    started = time.perf_counter()
    with write_transaction(engine) as conn:
        for statement in baseline_statements(job):
            used = {k: v for k, v in params.items() if f":{k}" in statement}
            conn.execute(text(statement), used)
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
