"""Find Duplicate Users: a library-wide scan for records of the same person, feeding Merge Users.

Every user not purged is scored against the others by a probabilistic record-linkage model (splink,
trained without labels on the scanned library: tasks/duplicates/linkage.py). Pairs at or above the
minimum probability are joined into clusters; each cluster becomes pairs From -> To into the one
record to keep, chosen by the direction rules (docs/jobs/find-duplicates.md). A real run adds the pairs to the review queue
as proposed (pairs reviewed before are not proposed again); no user is changed. Dry run unless
`dry_run` is false; `export_file` writes the pairs as CSV either way.
"""
from tasks.duplicates import steps
from tasks.duplicates.parameters import DuplicatesParameters
from tasks.engine.definition import JobDefinition, Unit
from tasks.engine.flow import job_flow

FIND_DUPLICATES = JobDefinition(
    name="find-duplicate-users",
    title="Find Duplicate Users",
    command="find-duplicates",
    summary_line="Find records of the same person across the library and propose them for merging.",
    parameters=DuplicatesParameters,
    unit=Unit("pair", "pairs"),
    key="pair_no",
    label="pair",
    validate=steps.validate,
    select=steps.select,
    decide=steps.decide,
    count=steps.count,
    lock=steps.lock,
    apply=steps.queue_pairs,
    # A pair whose users' roles, account type or protection changed, or that a person reviewed
    # meanwhile, is left alone this time.
    fingerprint=("from_id", "to_id", "from_non_patron_roles", "to_non_patron_roles", "from_account_type",
                 "to_account_type", "from_protected", "to_protected"),
    shape_summary=steps.shape_summary,
    report_sections=steps.top_pairs_section,
    sample_columns=("probability", "merge_round", "merge_refusal"),
)

find_duplicate_users = job_flow(FIND_DUPLICATES)
