"""The review queue of Find Duplicate Users: table duplicate_pairs (tasks/db/schema.py says what each
column means). Types and constraints are written out here, as the revision made them."""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "duplicate_pairs",
        sa.Column("pair_id", Id, autoincrement=True, nullable=False),
        sa.Column("user_id_a", Id, nullable=False),
        sa.Column("user_id_b", Id, nullable=False),
        sa.Column("from_user_id", Id, nullable=False),
        sa.Column("to_user_id", Id, nullable=False),
        sa.Column("from_primary_id", sa.String(length=255), nullable=False),
        sa.Column("to_primary_id", sa.String(length=255), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.Column("merge_refusal", sa.String(length=64), nullable=True),
        sa.Column("merge_round", sa.Integer(), server_default="1", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="proposed", nullable=False),
        sa.Column("proposed_by_run", sa.String(length=64), nullable=False),
        sa.Column("proposed_at", sa.DateTime(), nullable=False),
        sa.Column("reviewed_by", sa.String(length=255), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(), nullable=True),
        sa.Column("review_note", sa.Text(), nullable=True),
        sa.Column("merged_by_run", sa.String(length=64), nullable=True),
        sa.Column("merged_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("status IN ('proposed', 'accepted', 'rejected', 'merged')", name="duplicate_pairs_status"),
        sa.CheckConstraint("user_id_a < user_id_b", name="duplicate_pairs_ordered"),
        sa.PrimaryKeyConstraint("pair_id"),
        sa.UniqueConstraint("user_id_a", "user_id_b", name="uq_duplicate_pairs_users"),
    )
    op.create_index("ix_duplicate_pairs_status", "duplicate_pairs", ["status"])


def downgrade() -> None:
    op.drop_index("ix_duplicate_pairs_status", table_name="duplicate_pairs")
    op.drop_table("duplicate_pairs")
