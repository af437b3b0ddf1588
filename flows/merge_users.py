"""Merge Users: fold duplicate patron records (From) into the records to keep (To), pair by pair.

Each pair is validated first (both users exist and differ, neither is in another pair of the run,
neither is protected, the From user is a Patron only, INTERNAL -> EXTERNAL states copy-as-internal);
a pair that fails is reported with its reason and the others go on. A merge moves all loans,
requests and fees (with their transactions) and the chosen segments to the To user under the clash
rules in sql/merge/, then deletes the From user completely. Dry run unless `dry_run` is false.
"""
from tasks.engine.definition import JobDefinition, Unit
from tasks.engine.flow import job_flow
from tasks.engine.report import counted
from tasks.merge import steps
from tasks.merge.parameters import MergeParameters
from tasks.merge.rules import KINDS

MERGE = JobDefinition(
    name="merge-users",
    title="Merge Users",
    command="merge",
    summary_line="Merge duplicate user records (From) into the records to keep (To), pair by pair.",
    parameters=MergeParameters,
    unit=Unit("pair", "pairs"),
    key="pair_no",
    label="pair",
    prepare=steps.prepare,
    select=steps.select,
    decide=steps.decide,
    count=steps.count,
    lock=steps.lock,
    apply=steps.merge,
    # A pair whose users, roles or what would move changed since selection is left alone.
    fingerprint=("from_id", "to_id", "from_protected", "to_protected", "from_account_type", "to_account_type",
                 "from_non_patron_roles", "segment_type", *(f"moved_{k}" for k in KINDS)),
    shape_summary=steps.shape_summary,
    report_sections=steps.per_pair_section,
    left_out_is_failure=True,
    headline=lambda s: (f"Merge {s['merged']:,} of {counted(s['pairs'], 'pair')}: "
                        "each From user into its To user, then delete the From user"),
)

merge_users = job_flow(MERGE)
