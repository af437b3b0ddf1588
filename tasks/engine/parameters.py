"""Parameters every batch job shares. Each job's model extends this one; the model is the
documentation and the Prefect UI form."""
from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field

from tasks.errors import InvalidInput


class JobParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dry_run: bool = Field(
        default=True,
        description="Compute and report exactly what the job would do, and change nothing. "
                    "Set to false to really change the database.",
    )
    as_of: dt.date | None = Field(
        default=None,
        description="The run date the rules judge by (YYYY-MM-DD). Empty means today in the library's time zone.",
    )
    batch_size: int = Field(
        # At most 10,000: a batch's statements bind its ids one by one on SQLite, which takes 32,766.
        default=5000, ge=1, le=10_000,
        description="Units (users, pairs) per database transaction (at most 10,000). A batch is committed "
                    "whole or not at all.",
    )
    require_approval: bool = Field(
        default=False,
        description="For a real run: pause after the preview until someone approves it in the Prefect UI.",
    )
    approval_timeout_seconds: int = Field(
        default=3600, ge=10,
        description="How long a run waits for approval before it ends without changing anything.",
    )


def library_timezone() -> ZoneInfo | None:
    name = os.environ.get("LIBRARY_TIMEZONE")
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:
        raise InvalidInput(f"LIBRARY_TIMEZONE {name!r} is not a known time zone (e.g. Europe/Oslo)") from None


def run_date_and_time(as_of: dt.date | None) -> tuple[dt.date, dt.datetime]:
    """The run date and the run time (naive UTC, as the database stores times). An explicit as_of
    keeps today's wall-clock time, so 'overdue before the run time' means the same on any date."""
    tz = library_timezone()
    local_now = dt.datetime.now(tz) if tz else dt.datetime.now().astimezone()
    day = as_of or local_now.date()
    local_run = local_now.replace(year=day.year, month=day.month, day=day.day)
    utc_run = local_run.astimezone(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    return day, utc_run
