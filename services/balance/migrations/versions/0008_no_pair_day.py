"""pair flows are read from the exchanges (0007): balance_pair_day goes, one counter upsert fewer per event

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Nothing is lost: every pair-day counter was a sum over the exchange rows, which stay (and which
# relationships and a circle's flows are now summed from, through the covering indexes of 0007). A
# downgrade rebuilds the table from them.


def upgrade() -> None:
    op.drop_index("ix_balance_pair_day_receiver", table_name="balance_pair_day")
    op.drop_table("balance_pair_day")


def downgrade() -> None:
    op.create_table(
        "balance_pair_day",
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("giver", sa.String(length=64), nullable=False),
        sa.Column("receiver", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("minutes", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("pending_minutes", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("pending_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("generation", "giver", "receiver", "day", "kind"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_balance_pair_day_receiver", "balance_pair_day", ["generation", "receiver", "day"])
    # Recorded exchanges are pending, acknowledged ones settled; disputed and withdrawn ones count nowhere.
    op.execute(
        "INSERT INTO balance_pair_day (generation, giver, receiver, day, kind, minutes, count, pending_minutes,"
        " pending_count) SELECT generation, giver, receiver, occurred_on, kind,"
        " SUM(CASE WHEN status = 'acknowledged' THEN minutes ELSE 0 END),"
        " SUM(CASE WHEN status = 'acknowledged' THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN status = 'recorded' THEN minutes ELSE 0 END),"
        " SUM(CASE WHEN status = 'recorded' THEN 1 ELSE 0 END)"
        " FROM balance_exchanges WHERE status IN ('acknowledged', 'recorded')"
        " GROUP BY generation, giver, receiver, occurred_on, kind"
    )
