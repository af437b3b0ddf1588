"""The parameters of Merge Users: the command line's flags and the Prefect form."""
from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from tasks.engine.parameters import Cli, Form, JobParameters
from tasks.merge.rules import SEGMENTS

Segment = Literal["contacts", "identifiers", "notes", "blocks", "statistics", "attachments", "roles", "proxies"]


# The form's words for copy_as_internal (the command line's --copy-as-internal / --no-copy-as-internal).
COPY_AS_WORDS = {"As the To user's account type": None, "Internal": True, "External": False}
# A pair's own copy_as_internal, as a pairs file or a line of the form's Pairs gives it.
TRUE_WORDS, FALSE_WORDS = {"true", "yes", "y", "1", "internal"}, {"false", "no", "n", "0", "external"}


def copy_as_internal_word(word: str) -> bool | None:
    """A pair's copy_as_internal from its word: empty is the run's setting; ValueError for another word."""
    word = word.strip().lower()
    if word and word not in TRUE_WORDS | FALSE_WORDS:
        raise ValueError("must be internal or external, true or false (or empty)")
    return None if not word else word in TRUE_WORDS


class MergePair(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_user: str = Field(min_length=1, description="Primary id of the duplicate record; it is deleted.")
    to_user: str = Field(min_length=1, description="Primary id of the record to keep; it receives everything.")
    copy_as_internal: bool | None = Field(
        default=None, description="This pair's copy-as-internal; empty means the run's setting.",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_a_line(cls, value: Any) -> Any:
        # A line of the form's Pairs: FROM,TO or FROM,TO,internal|external (a tab, as a spreadsheet
        # pastes, also separates).
        if not isinstance(value, str):
            return value
        parts = [p.strip() for p in re.split(r"[,\t]", value)]
        if len(parts) not in (2, 3) or not all(parts[:2]):
            raise ValueError("a pair is a line FROM,TO (the primary ids of the duplicate and of the record to "
                             "keep), optionally ,internal or ,external")
        try:
            copy = copy_as_internal_word(parts[2]) if len(parts) == 3 else None
        except ValueError as exc:
            raise ValueError(f"the third value (copy as internal) {exc}") from None
        return {"from_user": parts[0], "to_user": parts[1], "copy_as_internal": copy}

    @field_validator("from_user", "to_user", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value


class MergeParameters(JobParameters):
    """Merge Users. Dry run unless `dry_run` is false."""

    from_user: Annotated[str | None, Cli("--from", metavar="PRIMARY_ID")] = Field(
        default=None, title="From user",
        description="One pair: the primary id of the duplicate record (deleted after the merge).",
    )
    to_user: Annotated[str | None, Cli("--to", metavar="PRIMARY_ID")] = Field(
        default=None, title="To user",
        description="One pair: the primary id of the record to keep (it receives everything).",
    )
    pairs: Annotated[list[MergePair], Cli(hidden=True), Form(lines=True)] = Field(
        default_factory=list, title="Pairs",
        description="Several pairs, one a line: `FROM,TO` (primary ids: From the duplicate, deleted; To the "
                    "record to keep), optionally `,internal` or `,external` for that pair's copy as internal. "
                    "Two columns copied from a spreadsheet work too.",
    )
    pairs_file: Annotated[str | None, Cli("--pairs", metavar="FILE.csv")] = Field(
        default=None, title="Pairs file",
        description="A CSV file of pairs (columns from_user,to_user and optional copy_as_internal), "
                    "read where the flow runs.",
    )
    merge_round: Annotated[int | None, Cli("--round", metavar="K"), Form(zero_is_none=True)] = Field(
        default=None, ge=1, title="Round",
        description="With a pairs file that find-duplicates --export wrote: merge only the pairs of this round "
                    "(a cluster of N records is N-1 pairs into one To user, rounds 1 to N-1; run round 1, then 2, ...). "
                    "Empty or 0: every pair.",
    )
    from_queue: bool = Field(
        default=False, title="From the review queue",
        description="Merge the pairs accepted in the review queue of Find Duplicate Users: at most one pair per "
                    "To user per run (a cluster's pairs are merged one run after another); merged pairs are "
                    "marked merged in the queue.",
    )
    segments: Annotated[list[Segment], Cli(metavar="LIST|all", split=",")] = Field(
        default_factory=lambda: list(SEGMENTS), title="Segments",
        description="Segments copied to the To user (others are deleted with the From user); 'all' for every "
                    "one. Loans, requests and fees always move.",
    )
    copy_as_internal: Annotated[bool | None, Cli("--copy-as-internal/--no-copy-as-internal"), Form(words=COPY_AS_WORDS)] = Field(
        default=None, title="Copy as internal",
        description="Copied segments become Internal (true) or External (false). Required for a pair that "
                    "merges an INTERNAL user into an EXTERNAL one; empty means of the To user's account type.",
    )
    _file_pairs: list[MergePair] = PrivateAttr(default_factory=list)

    @field_validator("merge_round", mode="before")
    @classmethod
    def _zero_is_every_round(cls, value: Any) -> Any:
        # 0 says "every pair" as well as empty does, so the form offers a number, not a number-or-None switch.
        return None if value == 0 else value

    @field_validator("from_user", "to_user", "pairs_file", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value

    @field_validator("segments", mode="before")
    @classmethod
    def _expand_all(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, (list, tuple)):
            value = [s.strip() if isinstance(s, str) else s for s in value]
            value = [s for s in value if s != ""]
            if not value:
                raise ValueError("name at least one segment, or all")
            if "all" in value:
                return list(SEGMENTS)
            return list(dict.fromkeys(value))
        return value

    def single_pair(self) -> MergePair | None:
        """The pair given as From user and To user, when both are."""
        if not (self.from_user and self.to_user):
            return None
        return MergePair(from_user=self.from_user, to_user=self.to_user)

    def all_pairs(self) -> list[tuple[str, str, bool | None]]:
        single = [self.single_pair()] if self.single_pair() else []
        return [(p.from_user, p.to_user, p.copy_as_internal) for p in [*single, *self.pairs, *self._file_pairs]]
