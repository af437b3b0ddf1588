"""Drop the user_id indexes of loans, requests and fees: each repeats the leading column of the table's
ix_*_active index, which serves every look-up by user as well, so the second index only cost every
write to these tables (load, purge, waive, anonymise, merge) one more index entry (issue 14,
BENCHMARKS.md).

Revision 0007, after 0006.
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TABLES = ("loans", "requests", "fees")


def upgrade() -> None:
    for table in _TABLES:
        op.drop_index(f"ix_{table}_user_id", table_name=table)


def downgrade() -> None:
    for table in _TABLES:
        op.create_index(f"ix_{table}_user_id", table, ["user_id"])
