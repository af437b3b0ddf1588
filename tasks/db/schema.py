"""The library database schema: the one source of truth for SQLite and PostgreSQL.

Tables are SQLAlchemy Core metadata so one definition serves both dialects; the jobs' statements
live in sql/ and name these tables directly. The database itself is made and upgraded by the Alembic
revisions in tasks/db/migrations/ (`init-db`): a change here goes with a new revision (docs/developers.md,
"Adding a schema revision"), and tests/test_migrations.py fails until the revisions match this file.
"""
from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# BIGINT ids on PostgreSQL, INTEGER PRIMARY KEY (the rowid) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")
# Money is stored as integer minor units (cents): exact on both databases, exact and vectorised in
# pandas. Decimal appears only at the edges (Alma files, parameters, reports): see tasks/money.py.
Money = BigInteger


def _pk() -> Column:
    return Column("id", Id, primary_key=True, autoincrement=True)


def _owner(nullable: bool = False, index: bool = True) -> Column:
    return Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=nullable, index=index)


def _unlinkable_owner() -> Column:
    """The user of a loan, request or fee: NULL once Anonymise loan history has unlinked the row. Not
    indexed alone: the table's ix_*_active index leads with it (revision 0007)."""
    return _owner(nullable=True, index=False)


def _extra() -> Column:
    # What an Alma record carries beyond the typed columns (fields outside the format's spec, and the
    # exact form of a typed field the column cannot hold, such as a null boolean): a JSON object as
    # text, NULL when there is nothing. See tasks/alma/format.py.
    return Column("extra", Text)


def _anonymized() -> list[Column]:
    """A loan, request or fee unlinked from its user by Anonymise loan history (user_id NULL) keeps the
    facts statistics need, as they stood when it was anonymised: its user's group, record type, account
    type and statistical categories (a JSON list of {"category_type", "statistic_category"})."""
    return [
        Column("anonymized_at", DateTime),
        Column("anon_user_group", String(64)),
        Column("anon_record_type", String(16)),
        Column("anon_account_type", String(16)),
        Column("anon_statistics", Text),
    ]


def _segment_type() -> Column:
    return Column("segment_type", String(8), CheckConstraint("segment_type IN ('Internal', 'External')"))


settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(255), nullable=False),
)

# Every administrator code table in one place: (table, code) -> description.
codes = Table(
    "codes",
    metadata,
    Column("code_table", String(32), primary_key=True),
    Column("code", String(64), primary_key=True),
    Column("description", String(255), nullable=False),
)

users = Table(
    "users",
    metadata,
    _pk(),
    # NULL only for a purged user whose primary id was removed by the delete-user policy.
    Column("primary_id", String(255), unique=True),
    Column("first_name", String(255)),
    Column("middle_name", String(255)),
    Column("last_name", String(255)),
    Column("user_group", String(64)),
    Column("record_type", String(16)),
    # NULL when the record did not say (a brief Alma user); merge treats it as EXTERNAL.
    Column("account_type", String(16)),
    Column("status", String(16)),
    Column("expiry_date", Date),
    Column("purge_date", Date),
    Column("birth_date", Date),
    Column("external_id", String(64)),
    Column("protected", Boolean, nullable=False, server_default="0"),
    # Set when the purge job removed the user; the row then holds only what the policy keeps.
    Column("purged_at", DateTime),
    Column("purge_policy", String(32)),
    CheckConstraint("account_type IN ('INTERNAL', 'EXTERNAL')", name="users_account_type"),
)
Index("ix_users_purge_date", users.c.purge_date)
# No index on purged_at: see sql/schema/drop_retired_indexes.sql.
Index("ix_users_user_group", users.c.user_group)

user_identifiers = Table(
    "user_identifiers",
    metadata,
    _pk(),
    _owner(),
    Column("id_type", String(64), nullable=False),
    Column("value", String(255), nullable=False),
    Column("status", String(16)),
    Column("note", Text),
    _segment_type(),
    UniqueConstraint("id_type", "value", name="uq_user_identifiers_type_value"),
)

user_addresses = Table(
    "user_addresses",
    metadata,
    _pk(),
    _owner(),
    Column("line1", String(255)),
    Column("line2", String(255)),
    Column("line3", String(255)),
    Column("line4", String(255)),
    Column("line5", String(255)),
    Column("city", String(255)),
    Column("state_province", String(255)),
    Column("postal_code", String(64)),
    Column("country", String(64)),
    Column("address_note", Text),
    Column("start_date", Date),
    Column("end_date", Date),
    # Alma allows several types per address; stored as a comma-separated list of codes.
    Column("address_types", String(255)),
    Column("preferred", Boolean, nullable=False, server_default="0"),
    _segment_type(),
)

user_emails = Table(
    "user_emails",
    metadata,
    _pk(),
    _owner(),
    Column("email_address", String(255), nullable=False),
    Column("description", Text),
    Column("email_types", String(255)),
    Column("preferred", Boolean, nullable=False, server_default="0"),
    _segment_type(),
)

user_phones = Table(
    "user_phones",
    metadata,
    _pk(),
    _owner(),
    Column("phone_number", String(64), nullable=False),
    Column("phone_types", String(255)),
    Column("preferred", Boolean, nullable=False, server_default="0"),
    Column("preferred_sms", Boolean, nullable=False, server_default="0"),
    _segment_type(),
)

user_notes = Table(
    "user_notes",
    metadata,
    _pk(),
    _owner(),
    Column("note_type", String(64)),
    Column("note_text", Text),
    Column("user_viewable", Boolean, nullable=False, server_default="0"),
    Column("popup_note", Boolean, nullable=False, server_default="0"),
    Column("created_by", String(255)),
    Column("created_date", DateTime),
    _segment_type(),
)

user_attachments = Table(
    "user_attachments",
    metadata,
    _pk(),
    _owner(),
    Column("file_name", String(255), nullable=False),
    Column("type", String(128)),
    Column("notes", Text),
    Column("content", LargeBinary),
)

user_roles = Table(
    "user_roles",
    metadata,
    _pk(),
    _owner(),
    Column("role_type", String(16), nullable=False),
    Column("scope", String(64), nullable=False, server_default=""),
    Column("status", String(16)),
    UniqueConstraint("user_id", "role_type", "scope", name="uq_user_roles_user_role_scope"),
)

user_blocks = Table(
    "user_blocks",
    metadata,
    _pk(),
    _owner(),
    Column("block_type", String(64)),
    Column("block_description", String(64)),
    Column("block_status", String(16)),
    Column("block_note", Text),
    Column("created_by", String(255)),
    Column("created_date", DateTime),
    Column("expiry_date", Date),
    _segment_type(),
)

user_statistics = Table(
    "user_statistics",
    metadata,
    _pk(),
    _owner(),
    Column("statistic_category", String(64)),
    Column("category_type", String(64)),
    Column("statistic_note", Text),
    _segment_type(),
)

# "user_id is a proxy for proxy_for_primary_id" (Alma's proxy_for_user on the proxy's record).
user_proxies = Table(
    "user_proxies",
    metadata,
    _pk(),
    _owner(),
    Column("proxy_for_primary_id", String(255), nullable=False, index=True),
)

# Fulfillment: kept under the keep-* delete-user policies (attached to the anonymised user row).
# user_id is NULL once Anonymise loan history has unlinked the row (then anonymized_at is set).
loans = Table(
    "loans",
    metadata,
    _pk(),
    _unlinkable_owner(),
    Column("loan_id", String(64), nullable=False, unique=True),
    Column("item_barcode", String(64)),
    Column("title", Text),
    Column("loan_date", DateTime),
    Column("due_date", DateTime),
    Column("return_date", DateTime),
    Column("loan_status", String(16), nullable=False),
    Column("process_status", String(32)),
    Column("library", String(64)),
    *_anonymized(),
    CheckConstraint("loan_status IN ('ACTIVE', 'COMPLETE')", name="loans_status"),
)
Index("ix_loans_active", loans.c.user_id, loans.c.loan_status, loans.c.due_date)

requests = Table(
    "requests",
    metadata,
    _pk(),
    _unlinkable_owner(),
    Column("request_id", String(64), nullable=False, unique=True),
    Column("request_type", String(32)),
    Column("request_status", String(16), nullable=False),
    Column("title", Text),
    Column("request_date", Date),
    Column("pickup_location_library", String(64)),
    *_anonymized(),
)
Index("ix_requests_active", requests.c.user_id, requests.c.request_status)

fees = Table(
    "fees",
    metadata,
    _pk(),
    _unlinkable_owner(),
    Column("fee_id", String(64), nullable=False, unique=True),
    Column("fee_type", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("balance_minor", Money, nullable=False),
    Column("original_amount_minor", Money, nullable=False),
    Column("creation_time", DateTime),
    Column("comment", Text),
    Column("owner", String(64)),
    Column("barcode", String(64)),
    Column("title", Text),
    *_anonymized(),
    CheckConstraint("status IN ('ACTIVE', 'CLOSED', 'INDISPUTE')", name="fees_status"),
    # A CREDIT fee carries negative amounts, as Alma sends it; every other fee is owed (>= 0).
    CheckConstraint("(fee_type = 'CREDIT' AND balance_minor <= 0 AND original_amount_minor <= 0)"
                    " OR (fee_type <> 'CREDIT' AND balance_minor >= 0)", name="fees_balance_sign"),
)
Index("ix_fees_active", fees.c.user_id, fees.c.status)

# The ledger: a fee's balance_minor is always original_amount_minor minus the sum of its transactions'
# amount_minor.
fee_transactions = Table(
    "fee_transactions",
    metadata,
    _pk(),
    Column("fee_id", Id, ForeignKey("fees.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("type", String(32), nullable=False),
    Column("amount_minor", Money, nullable=False),
    Column("reason", String(64)),
    Column("comment", Text),
    Column("transaction_time", DateTime),
    Column("job_run_id", String(64), index=True),
)

# Every part of a user record has `extra`, as its last column: where revision 0005 added it to the
# databases made before, so a new database and an upgraded one are the same.
for _table in (users, user_identifiers, user_addresses, user_emails, user_phones, user_notes, user_attachments,
               user_roles, user_blocks, user_statistics, user_proxies, loans, requests, fees, fee_transactions):
    _table.append_column(_extra())
del _table

# The rows a purged user keeps (the keep-statistics levels, tasks/library/policy.py) lose their `extra`;
# few rows have one (only what came from Alma with fields beyond the format), and an index of just those
# rows lets a purge batch find them without reading every loan of its users again (revision 0006).
EXTRA_INDEXES = {"loans": "user_id", "requests": "user_id", "fees": "user_id", "user_statistics": "user_id",
                 "fee_transactions": "fee_id"}
for _name, _owner_column in EXTRA_INDEXES.items():
    _has_extra = metadata.tables[_name].c.extra.is_not(None)
    Index(f"ix_{_name}_with_extra", metadata.tables[_name].c[_owner_column],
          sqlite_where=_has_extra, postgresql_where=_has_extra)
del _name, _owner_column, _has_extra

job_runs = Table(
    "job_runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("job", String(64), nullable=False),
    Column("flow_run_id", String(64)),
    Column("status", String(32), nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("as_of", Date),
    Column("parameters", Text, nullable=False),
    Column("summary", Text),
    Column("report", Text),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("approved_by", String(255)),
    Column("approval_note", Text),
    Column("error", Text),
)
Index("ix_job_runs_job_started", job_runs.c.job, job_runs.c.started_at)

# What happened to whom. user_id is the surrogate key, so the audit trail of a purged user names
# nobody once the policy has removed the primary id.
job_events = Table(
    "job_events",
    metadata,
    _pk(),
    Column("run_id", String(64), ForeignKey("job_runs.run_id"), nullable=False, index=True),
    Column("event", String(32), nullable=False),
    Column("user_id", Id, index=True),
    Column("fee_id", Id),
    Column("amount_minor", Money),
    Column("details", Text),
    Column("created_at", DateTime, nullable=False),
)
# Anonymising a fee clears fee_id on the events that named it with its user (FEE_WAIVED, ...).
Index("ix_job_events_fee_id", job_events.c.fee_id)

# What an exact undo of one merged pair needs (docs/jobs/merge.md, "The undo record", and docs/jobs/unmerge.md): the From user
# as it was (`record`: its row and every row of every part, as JSON) and which of those rows the merge
# did not move to the To user (`kept`: row ids by kind). Personal data: `record` and `kept` are emptied
# once the pair is unmerged, the row goes when the To user is purged, and housekeeping removes rows
# older than the retention period (setting `merge_undo_retention_days`, default 30).
merge_undo = Table(
    "merge_undo",
    metadata,
    _pk(),
    Column("merge_run_id", String(64), ForeignKey("job_runs.run_id"), nullable=False),
    Column("from_primary_id", String(255), nullable=False),
    Column("from_user_id", Id, nullable=False),
    Column("to_primary_id", String(255), nullable=False),
    # No foreign key: the To user may be merged away or purged; unmerge then refuses the pair.
    Column("to_user_id", Id, nullable=False, index=True),
    Column("merged_at", DateTime, nullable=False),
    Column("record", Text),
    Column("kept", Text),
    Column("unmerged_run_id", String(64)),
    Column("unmerged_at", DateTime),
    UniqueConstraint("merge_run_id", "from_primary_id", name="uq_merge_undo_run_from"),
)
Index("ix_merge_undo_merged_at", merge_undo.c.merged_at)
# The review queue of Find Duplicate Users: one row per unordered pair of records (user_id_a <
# user_id_b) ever proposed, whatever became of it. A person accepts or rejects a proposed pair; a
# rejected pair is never proposed again; Merge Users marks the pair it merged. No foreign keys to
# users: the From user is deleted by the merge, and the row must keep saying what was merged.
duplicate_pairs = Table(
    "duplicate_pairs",
    metadata,
    Column("pair_id", Id, primary_key=True, autoincrement=True),
    Column("user_id_a", Id, nullable=False),
    Column("user_id_b", Id, nullable=False),
    Column("from_user_id", Id, nullable=False),
    Column("to_user_id", Id, nullable=False),
    Column("from_primary_id", String(255), nullable=False),
    Column("to_primary_id", String(255), nullable=False),
    Column("probability", Float, nullable=False),
    Column("evidence", Text),
    # The reason Merge Users would refuse the pair as proposed (PROTECTED, FROM_NOT_PATRON_ONLY, ...).
    Column("merge_refusal", String(64)),
    # A cluster of N records is N-1 pairs into one To user; round k is its k-th pair (merge takes one per To per run).
    Column("merge_round", Integer, nullable=False, server_default="1"),
    Column("status", String(16), nullable=False, server_default="proposed"),
    Column("proposed_by_run", String(64), nullable=False),
    Column("proposed_at", DateTime, nullable=False),
    Column("reviewed_by", String(255)),
    Column("reviewed_at", DateTime),
    Column("review_note", Text),
    Column("merged_by_run", String(64)),
    Column("merged_at", DateTime),
    CheckConstraint("status IN ('proposed', 'accepted', 'rejected', 'merged')", name="duplicate_pairs_status"),
    CheckConstraint("user_id_a < user_id_b", name="duplicate_pairs_ordered"),
    UniqueConstraint("user_id_a", "user_id_b", name="uq_duplicate_pairs_users"),
)
Index("ix_duplicate_pairs_status", duplicate_pairs.c.status)
