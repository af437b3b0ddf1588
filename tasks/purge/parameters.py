"""The parameters of Purge User Records: the command line's flags and the Prefect form."""
from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal, get_args

from pydantic import Field, field_validator

from tasks.engine.parameters import Cli, Form, JobParameters

# Alma's record types are fixed (unlike user groups, which are the library's own codes), so the form
# offers them as a list to pick from.
RecordType = Literal["PUBLIC", "STAFF", "CONTACT"]
RECORD_TYPES: tuple[str, ...] = get_args(RecordType)


class PurgeParameters(JobParameters):
    """Purge User Records. Dry run unless `dry_run` is false."""

    grace_period_days: int = Field(
        default=0, ge=0, le=36_500, title="Grace period (days)",
        description="Days after the purge date before a user is purged. Run on 20 Dec with 10: purge dates up to 9 Dec.",
    )
    record_types: Annotated[list[RecordType], Cli("--record-type", metavar="CODE")] = Field(
        default_factory=list, title="Record types",
        description="Only users of these record types (repeatable). Empty: every record type.",
    )
    user_groups: Annotated[list[str], Cli("--user-group", metavar="CODE"), Form(codes="user-group")] = Field(
        default_factory=list, title="User groups",
        description="Only users in these user groups (codes of the user-group table; repeatable). Empty: every group.",
    )
    max_owed: Annotated[Decimal, Cli(metavar="AMOUNT")] = Field(
        default=Decimal("0"), ge=0, max_digits=12, decimal_places=2, title="Most owed",
        description="Users whose active fees, net of their credits, add up to more than this amount are kept "
                    "(OWES_ABOVE_THRESHOLD); users holding an active credit are kept too (HAS_CREDIT); "
                    "a user owing exactly this amount is purged and the fees are waived.",
    )
    max_users: Annotated[int | None, Form(zero_is_none=True)] = Field(
        default=None, ge=0, title="Most users per run",
        description="Blast-radius guard: a run that would purge more users than this stops before changing "
                    "anything and says why. Empty or 0: no limit.",
    )
    max_share: Annotated[float | None, Cli(metavar="FRACTION"), Form(zero_is_none=True)] = Field(
        default=None, gt=0, le=1, title="Most share of the library",
        description="Blast-radius guard: a run that would purge more than this share of all (not yet purged) "
                    "users stops before changing anything and says why (0.05 = 5%). Empty or 0: no limit.",
    )

    @field_validator("max_users", "max_share", mode="before")
    @classmethod
    def _zero_is_no_limit(cls, value):
        # A limit of 0 would refuse every run that purges anyone (a dry run does that): 0 means no limit,
        # which lets the form offer a number instead of a number-or-None switch.
        return None if value == 0 else value

