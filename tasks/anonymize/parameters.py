"""The parameters of Anonymise loan history: the command line's flags and the Prefect form."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from tasks.engine.parameters import Cli, Form, JobParameters, named

DAYS = Cli(metavar="N")


class AnonymizeParameters(JobParameters):
    """Anonymise loan history. Dry run unless `dry_run` is false."""

    loan_days: Annotated[int | None, DAYS] = Field(
        default=None, ge=0, le=36_500, title="Loans older than (days)",
        description="Returned loans (loan_status COMPLETE) whose return date is more than this many days before "
                    "the run date are unlinked from their user. Empty: loans are left alone.",
    )
    request_days: Annotated[int | None, DAYS] = Field(
        default=None, ge=0, le=36_500, title="Requests older than (days)",
        description="Requests in history (request_status HISTORY) whose request date is more than this many days "
                    "before the run date are unlinked. Empty: requests are left alone.",
    )
    fee_days: Annotated[int | None, DAYS] = Field(
        default=None, ge=0, le=36_500, title="Fees older than (days)",
        description="CLOSED fees with no balance whose last transaction (or creation, without one) is more than "
                    "this many days before the run date are unlinked. Empty: fees are left alone.",
    )
    libraries: Annotated[list[str], Cli("--library", metavar="CODE"), Form(codes="library")] = Field(
        default_factory=list, title="Libraries",
        description="Only rows of these libraries (codes of the library code table; repeatable): the loan's "
                    "library, the request's pickup library, the fee's owner. Empty: every library.",
    )
    user_groups: Annotated[list[str], Cli("--user-group", metavar="CODE"), Form(codes="user-group")] = Field(
        default_factory=list, title="User groups",
        description="Only rows of users in these user groups (codes of the user-group table; repeatable). "
                    "Empty: every group.",
    )
    keep_last: Annotated[int, Cli(metavar="K")] = Field(
        default=0, ge=0, le=10_000, title="Loans kept per user",
        description="The K most recently returned loans of each user stay linked, however old (Alma's "
                    "'number of loans to retain'). 0: none are kept.",
    )

    @model_validator(mode="after")
    def _at_least_one_kind(self) -> "AnonymizeParameters":
        if self.loan_days is None and self.request_days is None and self.fee_days is None:
            kinds = ", ".join(named(f) for f in ("loan_days", "request_days", "fee_days"))
            raise ValueError(f"give at least one of {kinds}")
        return self
