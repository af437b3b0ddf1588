"""The parameters of Find Duplicate Users: the command line's flags and the Prefect form."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator

from tasks.duplicates.linkage import DEFAULT_MIN_PROBABILITY
from tasks.engine.parameters import Cli, Form, JobParameters


class DuplicatesParameters(JobParameters):
    """Find Duplicate Users. Dry run unless `dry_run` is false: a real run adds the pairs found to the
    review queue as proposed; no user is ever changed."""

    min_probability: Annotated[float, Cli(metavar="P")] = Field(
        default=DEFAULT_MIN_PROBABILITY, ge=0, le=1, title="Minimum match probability",
        description=f"Propose pairs whose match probability is at least this (0-1). The default "
                    f"{DEFAULT_MIN_PROBABILITY} keeps precision about 0.99 on the project's noisy libraries "
                    "(BENCHMARKS.md); 0.9 finds a little more and joins more different people.",
    )
    user_groups: Annotated[list[str], Cli("--user-group", metavar="CODE"), Form(codes="user-group")] = Field(
        default_factory=list, title="User groups",
        description="Scan only users in these user groups (codes of the user-group table; repeatable). "
                    "Empty: every user not purged.",
    )
    export_file: Annotated[str | None, Cli("--export", metavar="FILE.csv")] = Field(
        default=None, title="Export file",
        description="Write the pairs found (dry run or not) to this CSV file, written where the flow runs: "
                    "from_user,to_user first, then probability, merge_round, cluster, merge_refusal and the "
                    "evidence; `merge --pairs FILE.csv` accepts it as it is.",
    )

    @field_validator("export_file", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip() or None
        return value
