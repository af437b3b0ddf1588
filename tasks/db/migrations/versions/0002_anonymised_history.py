"""Anonymised loan history: a loan, request or fee can be unlinked from its user (user_id NULL) and
keeps what statistics need, as it stood when it was anonymised (Anonymise loan history, issue 16).

- loans, requests, fees: user_id becomes nullable; new columns anonymized_at, anon_user_group,
  anon_record_type, anon_account_type, anon_statistics (a JSON list of {"category_type",
  "statistic_category"});
- job_events: an index on fee_id (anonymising a fee clears fee_id on the events that named it).

On SQLite a column cannot be made nullable in place: batch mode rebuilds the three tables (copy, drop,
rename); tasks/db/migrate.py turns foreign keys off around it, so dropping the old copies cascades
nowhere. On PostgreSQL these are plain ALTER TABLE statements, and no row is rewritten.
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# BIGINT ids on PostgreSQL, INTEGER PRIMARY KEY (the rowid) on SQLite, as in 0001.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TABLES = ("loans", "requests", "fees")
COLUMNS = ("anonymized_at", "anon_user_group", "anon_record_type", "anon_account_type", "anon_statistics")


def _snapshot_columns() -> list[sa.Column]:
    return [
        sa.Column("anonymized_at", sa.DateTime(), nullable=True),
        sa.Column("anon_user_group", sa.String(length=64), nullable=True),
        sa.Column("anon_record_type", sa.String(length=16), nullable=True),
        sa.Column("anon_account_type", sa.String(length=16), nullable=True),
        sa.Column("anon_statistics", sa.Text(), nullable=True),
    ]


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch_op:
            for column in _snapshot_columns():
                batch_op.add_column(column)
            batch_op.alter_column("user_id", existing_type=Id, nullable=True)
    op.create_index("ix_job_events_fee_id", "job_events", ["fee_id"])


def downgrade() -> None:
    """Only for a library with nothing anonymised: an unlinked row has no user to go back to."""
    op.drop_index("ix_job_events_fee_id", table_name="job_events")
    for table in reversed(TABLES):
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column("user_id", existing_type=Id, nullable=False)
            for column in reversed(COLUMNS):
                batch_op.drop_column(column)
