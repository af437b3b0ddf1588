"""Bulk Fine Waiving: close the small fines of many users at once (an amnesty, a goodwill gesture).

A user whose total outstanding balance (all active fees, of every type) is above the threshold gets
nothing waived. Every other user in scope has each active fee that matches the limits (fine type,
creation date) waived: balance 0, status CLOSED, and a WAIVE transaction with the amount, reason,
comment and time. Optionally users with overdue loans are left out; protected users always are.
"""
from tasks.engine.definition import JobDefinition, Unit
from tasks.engine.flow import job_flow
from tasks.engine.report import counted
from tasks.library.money import money
from tasks.waive import steps
from tasks.waive.parameters import WaiveParameters

WAIVE = JobDefinition(
    name="bulk-fine-waiving",
    title="Bulk Fine Waiving",
    command="waive",
    summary_line="Waive the active fees of users whose total balance is not above a threshold.",
    parameters=WaiveParameters,
    unit=Unit("user", "users"),
    key="user_id",
    label="primary_id",
    select=steps.select,
    decide=steps.decide,
    count=steps.count,
    lock=steps.lock,
    apply=steps.waive,
    # A fee paid, changed or added since selection changes one of these; that user is left alone.
    fingerprint=("fee_pk", "balance_minor", "owed_minor", "active_fees"),
    selection_counts=("users_eligible",),
    shape_summary=steps.add_users_considered,
    sample_columns=("user_group", "owed"),
    headline=lambda s: (f"Waive {counted(s['fines_waived'], 'fine')} of {counted(s['users_waived'], 'user')}, "
                        f"{money(s['amount_waived'])} in total"),
    # No guard needs the whole selection: batches start while it is read.
    streams_selection=lambda parameters: True,
)

bulk_fine_waiving = job_flow(WAIVE)
