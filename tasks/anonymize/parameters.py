"""Anonymise loan history: the parameters (the documentation, the Prefect UI form and the CLI's flags)."""
from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from tasks.engine.parameters import JobParameters


class AnonymizeParameters(JobParameters):
    """Anonymise loan history. Dry run unless `dry_run` is false."""

    loan_days: int | None = Field(
        default=None, ge=0, le=36_500,
        description="Returned loans (loan_status COMPLETE) whose return date is more than this many days before "
                    "the run date are unlinked from their user. Empty: loans are left alone.",
    )
    request_days: int | None = Field(
        default=None, ge=0, le=36_500,
        description="Requests in history (request_status HISTORY) whose request date is more than this many days "
                    "before the run date are unlinked. Empty: requests are left alone.",
    )
    fee_days: int | None = Field(
        default=None, ge=0, le=36_500,
        description="CLOSED fees with no balance whose last transaction (or creation, without one) is more than "
                    "this many days before the run date are unlinked. Empty: fees are left alone.",
    )
    libraries: list[str] = Field(
        default_factory=list,
        description="Only rows of these libraries (codes of the library code table): the loan's library, the "
                    "request's pickup library, the fee's owner. Empty: every library.",
    )
    user_groups: list[str] = Field(
        default_factory=list,
        description="Only rows of users in these user groups (codes of the user-group code table). Empty: all.",
    )
    keep_last: int = Field(
        default=0, ge=0, le=10_000,
        description="The K most recently returned loans of each user stay linked, however old (Alma's "
                    "'number of loans to retain'). 0: none are kept.",
    )

    @field_validator("libraries", "user_groups")
    @classmethod
    def _no_blank_codes(cls, codes: list[str]) -> list[str]:
        if any(not c.strip() for c in codes):
            raise ValueError("codes may not be empty")
        return codes

    @model_validator(mode="after")
    def _at_least_one_kind(self) -> "AnonymizeParameters":
        if self.loan_days is None and self.request_days is None and self.fee_days is None:
            raise ValueError("give at least one of loan_days, request_days, fee_days")
        return self
