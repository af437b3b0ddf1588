"""The parameters of Bulk Fine Waiving: the command line's flags and the Prefect form."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator

from tasks.engine.parameters import Cli, Form, JobParameters


# The reason Purge User Records gives the fees it waives; never one a person chooses.
USER_PURGED = "USER_PURGED"


class WaiveParameters(JobParameters):
    """Bulk Fine Waiving. Dry run unless `dry_run` is false."""

    user_groups: Annotated[list[str], Cli("--user-group", metavar="CODE"), Form(codes="user-group")] = Field(
        default_factory=list, title="User groups",
        description="Only users in these user groups (codes; repeatable). Empty: all.",
    )
    fine_types: Annotated[list[str], Cli("--fine-type", metavar="CODE"), Form(codes="fee-type")] = Field(
        default_factory=list, title="Fine types",
        description="Only fees of these fee types (codes; repeatable) are waived; the threshold still counts "
                    "every fee. Empty: all types.",
    )
    created_from: Annotated[dt.date | None, Cli(metavar="YYYY-MM-DD")] = Field(
        default=None, title="Created from", description="Only fees created on or after this date.",
    )
    created_to: Annotated[dt.date | None, Cli(metavar="YYYY-MM-DD")] = Field(
        default=None, title="Created to", description="Only fees created on or before this date.",
    )
    exclude_overdue: bool = Field(
        default=False, title="Leave out users with overdue loans",
        description="Leave out users with an active loan due before the run time (HAS_OVERDUE_LOANS).",
    )
    max_fine_threshold: Annotated[Decimal, Cli(metavar="AMOUNT")] = Field(
        gt=0, max_digits=12, decimal_places=2, title="Fine threshold",
        description="Users whose total outstanding balance (all active fees, every type) is above this get "
                    "nothing waived (ABOVE_FINE_THRESHOLD). A total exactly at the threshold is waived.",
    )
    waive_reason: Annotated[str, Cli("--reason", metavar="CODE"), Form(codes="waive-reason", internal=(USER_PURGED,))] = Field(
        min_length=1, max_length=64, title="Waive reason",
        description="Why the fees are waived: a code from the waive-reason code table (e.g. AMNESTY).",
    )
    comment: Annotated[str | None, Cli(metavar="TEXT")] = Field(
        default=None, max_length=2000, title="Comment",
        description="Recorded on every WAIVE transaction. May be left empty.",
    )

    @field_validator("waive_reason")
    @classmethod
    def _not_internal(cls, reason: str) -> str:
        if reason.strip() == USER_PURGED:
            raise ValueError(f"{USER_PURGED} is kept for the fees Purge User Records waives; choose another reason")
        return reason

    @field_validator("created_to")
    @classmethod
    def _date_range_in_order(cls, created_to: dt.date | None, info: ValidationInfo) -> dt.date | None:
        created_from = info.data.get("created_from")
        if created_to and created_from and created_to < created_from:
            raise ValueError(f"the creation-date range ends before it starts ({created_from})")
        return created_to
