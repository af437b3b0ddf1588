"""Issue 14, the Alma format keeps every field: an `extra` column on every part of a user record, a user
whose record did not say its account type, and credits (a CREDIT fee's amounts are negative).

- `extra` (TEXT, NULL when there is nothing): what an Alma record carries beyond the typed columns, as
  JSON (tasks/alma/format.py), added as the last column of the 15 tables of a user record;
- `users.account_type`: nullable, no default (NULL: not known; merge counts it as EXTERNAL). Rows made
  before keep the EXTERNAL they were given;
- fees: the check `fees_balance_not_negative` (balance >= 0) becomes `fees_balance_sign`: a CREDIT fee's
  balance and original amount are <= 0, every other fee's balance >= 0. Every existing fee passes it.

On SQLite the users and fees changes rebuild those tables in batch mode (copy, drop, rename), with
foreign keys off for the upgrade's transaction (tasks/db/migrate.py): rows are kept, children too.
Types and constraints are written out here, not imported from tasks/db/schema.py.

Revision 0005, after 0004. It adds `extra` as the last column of each table.
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The tables of a user record (tasks/segments.py and the ledger) that gain `extra`; users and fees are
# altered further below.
_PLAIN_TABLES = ("user_identifiers", "user_addresses", "user_emails", "user_phones", "user_notes",
                 "user_attachments", "user_roles", "user_blocks", "user_statistics", "user_proxies",
                 "loans", "requests", "fee_transactions")

BALANCE_SIGN = ("(fee_type = 'CREDIT' AND balance_minor <= 0 AND original_amount_minor <= 0)"
                " OR (fee_type <> 'CREDIT' AND balance_minor >= 0)")


def upgrade() -> None:
    for table in _PLAIN_TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("extra", sa.Text(), nullable=True))

    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("extra", sa.Text(), nullable=True))
        batch_op.alter_column("account_type", existing_type=sa.String(length=16),
                              server_default=None, nullable=True)

    with op.batch_alter_table("fees") as batch_op:
        batch_op.add_column(sa.Column("extra", sa.Text(), nullable=True))
        batch_op.drop_constraint("fees_balance_not_negative", type_="check")
        batch_op.create_check_constraint("fees_balance_sign", BALANCE_SIGN)


def downgrade() -> None:
    # Back to 0002 only when nothing needs this revision: a credit (a negative balance) fails the old
    # check, and the Alma fields kept in `extra` are lost.
    op.execute("UPDATE users SET account_type = 'EXTERNAL' WHERE account_type IS NULL")
    with op.batch_alter_table("fees") as batch_op:
        batch_op.drop_constraint("fees_balance_sign", type_="check")
        batch_op.create_check_constraint("fees_balance_not_negative", "balance_minor >= 0")
        batch_op.drop_column("extra")

    with op.batch_alter_table("users") as batch_op:
        batch_op.alter_column("account_type", existing_type=sa.String(length=16),
                              server_default="EXTERNAL", nullable=False)
        batch_op.drop_column("extra")

    for table in reversed(_PLAIN_TABLES):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("extra")
