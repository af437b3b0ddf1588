"""The registry of jobs: the one place that lists them. The command line and the deployments are made
from it.

Each job is listed by where it lives, not imported: a flow module imports Prefect and pandas (~2-4 s),
which `python -m flows --help` never needs and a job command needs only once it runs its flow. `FLOWS`
and `JOBS` import every flow module when first asked for.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prefect import Flow

    from tasks.engine.definition import JobDefinition


@dataclass(frozen=True)
class Entry:
    command: str        # `python -m flows COMMAND`: the definition's `command`
    flow: str           # "module:attribute" of the job's flow (its `.job` is the JobDefinition)
    parameters: str     # "module:class" of its parameter model: the command's options, without Prefect
    title: str          # the one line of `--help`: the definition's `title` (tests/test_cli_generation.py)

    def load_flow(self) -> Flow:
        return _attribute(self.flow)

    def load_parameters(self) -> type:
        return _attribute(self.parameters)


def _attribute(where: str) -> Any:
    module, _, name = where.partition(":")
    return getattr(importlib.import_module(module), name)


ENTRIES: tuple[Entry, ...] = (
    Entry("purge", "flows.purge_users:purge_user_records", "tasks.purge.parameters:PurgeParameters",
          "Purge User Records"),
    Entry("waive", "flows.waive_fines:bulk_fine_waiving", "tasks.waive.parameters:WaiveParameters",
          "Bulk Fine Waiving"),
    Entry("merge", "flows.merge_users:merge_users", "tasks.merge.parameters:MergeParameters", "Merge Users"),
    Entry("anonymize", "flows.anonymize_loans:anonymize_loan_history",
          "tasks.anonymize.parameters:AnonymizeParameters", "Anonymise loan history"),
    Entry("unmerge", "flows.unmerge_users:unmerge_users", "tasks.unmerge.parameters:UnmergeParameters",
          "Undo a merge"),
    Entry("find-duplicates", "flows.find_duplicates:find_duplicate_users",
          "tasks.duplicates.parameters:DuplicatesParameters", "Find Duplicate Users"),
)


def entry_for(command: str) -> Entry | None:
    return next((e for e in ENTRIES if e.command == command), None)


def flow_of(job: JobDefinition) -> Flow:
    return next(f for f in _flows() if f.job is job)


def _flows() -> tuple[Flow, ...]:
    return tuple(e.load_flow() for e in ENTRIES)


def __getattr__(name: str) -> Any:
    # FLOWS: tuple[Flow, ...] and JOBS: tuple[JobDefinition, ...], imported on first use.
    if name == "FLOWS":
        return _flows()
    if name == "JOBS":
        return tuple(f.job for f in _flows())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
