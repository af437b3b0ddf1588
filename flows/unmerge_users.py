"""Undo a merge: re-create the From users of a real Merge Users run exactly as they were and move back
what moved, pair by pair (all of the run's pairs, or those named).

A pair is undone only when an earlier unmerge has not undone it, its To user is still there (not
purged, not merged away), its undo record is within the retention period, and nobody has taken the
From user's primary id or an identifier it gets back; the others are reported with their reason. What
the To user did with moved rows since the merge goes back with them; what the To user got since stays.
Dry run unless `dry_run` is false.
"""
from tasks.engine.definition import JobDefinition, Unit
from tasks.engine.flow import job_flow
from tasks.segments import KINDS
from tasks.unmerge import steps
from tasks.unmerge.parameters import UnmergeParameters

UNMERGE = JobDefinition(
    name="unmerge-users",
    title="Undo a merge",
    command="unmerge",
    summary_line="Undo a Merge Users run, or some of its pairs: re-create each From user and move back what moved.",
    parameters=UnmergeParameters,
    unit=Unit("pair", "pairs"),
    key="from_primary_id",
    label="pair",
    validate=steps.validate,
    select=steps.select_pairs,
    decide=steps.decide,
    count=steps.count,
    lock=steps.lock,
    apply=steps.unmerge,
    # A pair whose To user, undo record or moved rows changed since selection is left alone.
    fingerprint=("to_present", "unmerged", "has_record", "primary_id_taken", "identifier_taken", "from_id_free",
                 *(f"back_{k}" for k in KINDS)),
    shape_summary=steps.shape_summary,
    report_sections=steps.per_pair_section,
    left_out_is_failure=True,
)

unmerge_users = job_flow(UNMERGE)
