"""The library schema as it stood when migrations began (what `metadata.create_all` made until then).

A database made before migrations (schema_info version 1) is this revision and is stamped with it
(tasks/db/migrate.py). Types and constraints are written out here, not imported from
tasks/db/schema.py: a revision stays what it was when later ones change the schema.
"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# BIGINT ids on PostgreSQL, INTEGER PRIMARY KEY (the rowid) on SQLite.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SEGMENT_TYPE = "segment_type IN ('Internal', 'External')"


def upgrade() -> None:
    op.create_table(
        "codes",
        sa.Column("code_table", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("code_table", "code"),
    )

    op.create_table(
        "job_runs",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("flow_run_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=True),
        sa.Column("parameters", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("report", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("approved_by", sa.String(length=255), nullable=True),
        sa.Column("approval_note", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.create_index("ix_job_runs_job_started", "job_runs", ["job", "started_at"])

    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )

    op.create_table(
        "users",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("primary_id", sa.String(length=255), nullable=True),
        sa.Column("first_name", sa.String(length=255), nullable=True),
        sa.Column("middle_name", sa.String(length=255), nullable=True),
        sa.Column("last_name", sa.String(length=255), nullable=True),
        sa.Column("user_group", sa.String(length=64), nullable=True),
        sa.Column("record_type", sa.String(length=16), nullable=True),
        sa.Column("account_type", sa.String(length=16), server_default="EXTERNAL", nullable=False),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("expiry_date", sa.Date(), nullable=True),
        sa.Column("purge_date", sa.Date(), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("external_id", sa.String(length=64), nullable=True),
        sa.Column("protected", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("purged_at", sa.DateTime(), nullable=True),
        sa.Column("purge_policy", sa.String(length=32), nullable=True),
        sa.CheckConstraint("account_type IN ('INTERNAL', 'EXTERNAL')", name="users_account_type"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("primary_id"),
    )
    op.create_index("ix_users_purge_date", "users", ["purge_date"])
    op.create_index("ix_users_user_group", "users", ["user_group"])

    op.create_table(
        "fees",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("fee_id", sa.String(length=64), nullable=False),
        sa.Column("fee_type", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("balance_minor", sa.BigInteger(), nullable=False),
        sa.Column("original_amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("creation_time", sa.DateTime(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column("barcode", sa.String(length=64), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('ACTIVE', 'CLOSED', 'INDISPUTE')", name="fees_status"),
        sa.CheckConstraint("balance_minor >= 0", name="fees_balance_not_negative"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("fee_id"),
    )
    op.create_index("ix_fees_active", "fees", ["user_id", "status"])
    op.create_index("ix_fees_user_id", "fees", ["user_id"])

    op.create_table(
        "job_events",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("user_id", Id, nullable=True),
        sa.Column("fee_id", Id, nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("details", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["job_runs.run_id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_job_events_run_id", "job_events", ["run_id"])
    op.create_index("ix_job_events_user_id", "job_events", ["user_id"])

    op.create_table(
        "loans",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("loan_id", sa.String(length=64), nullable=False),
        sa.Column("item_barcode", sa.String(length=64), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("loan_date", sa.DateTime(), nullable=True),
        sa.Column("due_date", sa.DateTime(), nullable=True),
        sa.Column("return_date", sa.DateTime(), nullable=True),
        sa.Column("loan_status", sa.String(length=16), nullable=False),
        sa.Column("process_status", sa.String(length=32), nullable=True),
        sa.Column("library", sa.String(length=64), nullable=True),
        sa.CheckConstraint("loan_status IN ('ACTIVE', 'COMPLETE')", name="loans_status"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("loan_id"),
    )
    op.create_index("ix_loans_active", "loans", ["user_id", "loan_status", "due_date"])
    op.create_index("ix_loans_user_id", "loans", ["user_id"])

    op.create_table(
        "requests",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("request_type", sa.String(length=32), nullable=True),
        sa.Column("request_status", sa.String(length=16), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("request_date", sa.Date(), nullable=True),
        sa.Column("pickup_location_library", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id"),
    )
    op.create_index("ix_requests_active", "requests", ["user_id", "request_status"])
    op.create_index("ix_requests_user_id", "requests", ["user_id"])

    op.create_table(
        "user_addresses",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("line1", sa.String(length=255), nullable=True),
        sa.Column("line2", sa.String(length=255), nullable=True),
        sa.Column("line3", sa.String(length=255), nullable=True),
        sa.Column("line4", sa.String(length=255), nullable=True),
        sa.Column("line5", sa.String(length=255), nullable=True),
        sa.Column("city", sa.String(length=255), nullable=True),
        sa.Column("state_province", sa.String(length=255), nullable=True),
        sa.Column("postal_code", sa.String(length=64), nullable=True),
        sa.Column("country", sa.String(length=64), nullable=True),
        sa.Column("address_note", sa.Text(), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("address_types", sa.String(length=255), nullable=True),
        sa.Column("preferred", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("segment_type", sa.String(length=8), sa.CheckConstraint(SEGMENT_TYPE), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_user_addresses_user_id", "user_addresses", ["user_id"])

    op.create_table(
        "user_attachments",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=128), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_user_attachments_user_id", "user_attachments", ["user_id"])

    op.create_table(
        "user_blocks",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("block_type", sa.String(length=64), nullable=True),
        sa.Column("block_description", sa.String(length=64), nullable=True),
        sa.Column("block_status", sa.String(length=16), nullable=True),
        sa.Column("block_note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.Column("created_date", sa.DateTime(), nullable=True),
        sa.Column("expiry_date", sa.Date(), nullable=True),
        sa.Column("segment_type", sa.String(length=8), sa.CheckConstraint(SEGMENT_TYPE), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_user_blocks_user_id", "user_blocks", ["user_id"])

    op.create_table(
        "user_emails",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("email_address", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("email_types", sa.String(length=255), nullable=True),
        sa.Column("preferred", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("segment_type", sa.String(length=8), sa.CheckConstraint(SEGMENT_TYPE), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_user_emails_user_id", "user_emails", ["user_id"])

    op.create_table(
        "user_identifiers",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("id_type", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("segment_type", sa.String(length=8), sa.CheckConstraint(SEGMENT_TYPE), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("id_type", "value", name="uq_user_identifiers_type_value"),
    )
    op.create_index("ix_user_identifiers_user_id", "user_identifiers", ["user_id"])

    op.create_table(
        "user_notes",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("note_type", sa.String(length=64), nullable=True),
        sa.Column("note_text", sa.Text(), nullable=True),
        sa.Column("user_viewable", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("popup_note", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.Column("created_date", sa.DateTime(), nullable=True),
        sa.Column("segment_type", sa.String(length=8), sa.CheckConstraint(SEGMENT_TYPE), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_user_notes_user_id", "user_notes", ["user_id"])

    op.create_table(
        "user_phones",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("phone_number", sa.String(length=64), nullable=False),
        sa.Column("phone_types", sa.String(length=255), nullable=True),
        sa.Column("preferred", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("preferred_sms", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("segment_type", sa.String(length=8), sa.CheckConstraint(SEGMENT_TYPE), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_user_phones_user_id", "user_phones", ["user_id"])

    op.create_table(
        "user_proxies",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("proxy_for_primary_id", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_user_proxies_proxy_for_primary_id", "user_proxies", ["proxy_for_primary_id"])
    op.create_index("ix_user_proxies_user_id", "user_proxies", ["user_id"])

    op.create_table(
        "user_roles",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("role_type", sa.String(length=16), nullable=False),
        sa.Column("scope", sa.String(length=64), server_default="", nullable=False),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "role_type", "scope", name="uq_user_roles_user_role_scope"),
    )
    op.create_index("ix_user_roles_user_id", "user_roles", ["user_id"])

    op.create_table(
        "user_statistics",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("statistic_category", sa.String(length=64), nullable=True),
        sa.Column("category_type", sa.String(length=64), nullable=True),
        sa.Column("statistic_note", sa.Text(), nullable=True),
        sa.Column("segment_type", sa.String(length=8), sa.CheckConstraint(SEGMENT_TYPE), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_user_statistics_user_id", "user_statistics", ["user_id"])

    op.create_table(
        "fee_transactions",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("fee_id", Id, nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("transaction_time", sa.DateTime(), nullable=True),
        sa.Column("job_run_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["fee_id"], ["fees.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_fee_transactions_fee_id", "fee_transactions", ["fee_id"])
    op.create_index("ix_fee_transactions_job_run_id", "fee_transactions", ["job_run_id"])


def downgrade() -> None:
    op.drop_table("fee_transactions")
    op.drop_table("user_statistics")
    op.drop_table("user_roles")
    op.drop_table("user_proxies")
    op.drop_table("user_phones")
    op.drop_table("user_notes")
    op.drop_table("user_identifiers")
    op.drop_table("user_emails")
    op.drop_table("user_blocks")
    op.drop_table("user_attachments")
    op.drop_table("user_addresses")
    op.drop_table("requests")
    op.drop_table("loans")
    op.drop_table("job_events")
    op.drop_table("fees")
    op.drop_table("users")
    op.drop_table("settings")
    op.drop_table("job_runs")
    op.drop_table("codes")
