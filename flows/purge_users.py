"""Purge User Records: remove users whose purge date has passed, nightly or ad hoc.

A user is purged when the purge date is before the run date minus the grace period, the record
type and user group are within the limits, the outstanding balance is not above the maximum owed,
no active loan or request is attached, and the user is not protected. Purging waives the user's
active fees (reason USER_PURGED) and then removes the user as the delete-user policy says.
"""
from tasks.engine.definition import JobDefinition, Unit
from tasks.engine.flow import job_flow
from tasks.engine.report import counted
from tasks.library.money import money
from tasks.purge import steps
from tasks.purge.parameters import PurgeParameters

PURGE = JobDefinition(
    name="purge-user-records",
    title="Purge User Records",
    command="purge",
    summary_line="Purge users whose purge date has passed, as the delete-user policy says.",
    parameters=PurgeParameters,
    unit=Unit("user", "users"),
    key="user_id",
    label="primary_id",
    select=steps.select,
    decide=steps.decide,
    count=steps.count,
    guards=(steps.blast_radius_guard,),
    lock=steps.lock,
    apply=steps.purge,
    # A user who borrowed, requested, paid or was fined since selection changes one of these.
    fingerprint=("owed_minor", "active_fees", "all_fees", "active_loans", "active_requests", "protected"),
    selection_counts=("eligible",),
    sample_columns=("user_group", "record_type", "purge_date"),
    headline=lambda s: f"Purge {counted(s['purged'], 'user')}" + (
        f", waiving {counted(s['fines_waived'], 'fine')} ({money(s['amount_waived'])})" if s["fines_waived"] else ""),
    # Batches start while the library is read unless a blast-radius guard must count it first.
    streams_selection=steps.streams_selection,
)

purge_user_records = job_flow(PURGE)
