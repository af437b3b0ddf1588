"""Undo a merge: the merge_undo table, one row per merged pair, holding what an exact undo needs
(tasks/db/undo_record.py). Types written out here, not imported from tasks/db/schema.py.

Revision 0003, after 0002 (anonymised history).
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "merge_undo",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("merge_run_id", sa.String(length=64), nullable=False),
        sa.Column("from_primary_id", sa.String(length=255), nullable=False),
        sa.Column("from_user_id", Id, nullable=False),
        sa.Column("to_primary_id", sa.String(length=255), nullable=False),
        sa.Column("to_user_id", Id, nullable=False),
        sa.Column("merged_at", sa.DateTime(), nullable=False),
        sa.Column("record", sa.Text(), nullable=True),
        sa.Column("kept", sa.Text(), nullable=True),
        sa.Column("unmerged_run_id", sa.String(length=64), nullable=True),
        sa.Column("unmerged_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["merge_run_id"], ["job_runs.run_id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("merge_run_id", "from_primary_id", name="uq_merge_undo_run_from"),
    )
    op.create_index("ix_merge_undo_merged_at", "merge_undo", ["merged_at"])
    op.create_index("ix_merge_undo_to_user_id", "merge_undo", ["to_user_id"])


def downgrade() -> None:
    op.drop_index("ix_merge_undo_to_user_id", table_name="merge_undo")
    op.drop_index("ix_merge_undo_merged_at", table_name="merge_undo")
    op.drop_table("merge_undo")
