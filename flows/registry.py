"""The registry of jobs: the one place that lists them. The command line and the deployments are made
from it."""
from prefect import Flow

from flows.anonymize_loans import anonymize_loan_history
from flows.merge_users import merge_users
from flows.purge_users import purge_user_records
from flows.waive_fines import bulk_fine_waiving
from tasks.engine.definition import JobDefinition

FLOWS: tuple[Flow, ...] = (purge_user_records, bulk_fine_waiving, merge_users, anonymize_loan_history)
JOBS: tuple[JobDefinition, ...] = tuple(f.job for f in FLOWS)


def flow_of(job: JobDefinition) -> Flow:
    return next(f for f in FLOWS if f.job is job)
