"""Anonymise loan history: unlink old returned loans, requests in history and closed fees from their
users, keeping what statistics need (the user's group, record type, account type and statistical
categories as they stood, the row's own dates, library, item and amounts).

A returned loan whose return date is more than N days before the run date, a request in history older
than N days, a CLOSED fee without balance whose last transaction is older than N days is unlinked, within
the library and user-group limits where given; each user's K most recently returned loans stay linked.
Active loans, active requests, fees with a balance or in dispute, and protected users are never touched.
"""
from tasks.anonymize import steps
from tasks.anonymize.parameters import AnonymizeParameters
from tasks.engine.definition import JobDefinition, Unit
from tasks.engine.flow import job_flow

ANONYMIZE = JobDefinition(
    name="anonymize-loan-history",
    title="Anonymise loan history",
    command="anonymize",
    summary_line="Unlink old returned loans, requests in history and closed fees from their users, "
                 "keeping what statistics need.",
    parameters=AnonymizeParameters,
    unit=Unit("user", "users"),
    key="user_id",
    label="primary_id",
    select=steps.select,
    decide=steps.decide,
    count=steps.count,
    lock=steps.lock,
    apply=steps.apply,
    # A loan re-opened, renewed or returned again, a request revived, a fee re-charged, the user
    # protected or moved out of the groups since selection changes one of these.
    fingerprint=steps.FINGERPRINT,
    # Its selection comes ordered by user and no guard needs the whole of it first.
    streams_selection=lambda parameters: True,
)

anonymize_loan_history = job_flow(ANONYMIZE)
