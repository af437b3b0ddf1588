"""The parameters of Undo a merge: the command line's flags and the Prefect form."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator

from tasks.engine.parameters import Cli, Form, JobParameters


class UnmergeParameters(JobParameters):
    """Undo a merge. Dry run unless `dry_run` is false."""

    merge_run_id: Annotated[str, Cli("--run", metavar="RUN_ID")] = Field(
        min_length=1, title="Merge run",
        description="The run id of a real Merge Users run (`history --job merge-users` lists them).",
    )
    from_users: Annotated[list[str], Cli("--pair", metavar="FROM_PRIMARY_ID",
                                         help="Undo only the pairs whose From user had these primary ids "
                                              "(repeatable). Default: every pair of the run."),
                          Form(lines=True)] = Field(
        default_factory=list, title="Only these pairs (From users)",
        description="Undo only the pairs whose From user had these primary ids, one a line. "
                    "Empty: every pair of the run.",
    )

    @field_validator("merge_run_id", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("from_users")
    @classmethod
    def _no_blanks(cls, values: list[str]) -> list[str]:
        values = [v.strip() for v in values]
        if any(not v for v in values):
            raise ValueError("primary ids may not be empty")
        return list(dict.fromkeys(values))
