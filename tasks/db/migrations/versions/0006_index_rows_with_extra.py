"""Partial indexes of the rows that carry `extra`, on the tables whose rows a purged user keeps: a purge
batch empties their `extra` (the delete-user policy) and finds them through these rather than through
every row of its users (issue 18, BENCHMARKS.md). Written out here, not imported from tasks/db/schema.py.

Revision 0006, after 0005.
"""
from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_INDEXED = {"loans": "user_id", "requests": "user_id", "fees": "user_id", "user_statistics": "user_id",
            "fee_transactions": "fee_id"}


def upgrade() -> None:
    for table, column in _INDEXED.items():
        where = sa.text("extra IS NOT NULL")
        op.create_index(f"ix_{table}_with_extra", table, [column], sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    for table in _INDEXED:
        op.drop_index(f"ix_{table}_with_extra", table_name=table)
