"""a member's numbers are summed from the exchanges (0007's indexes): balance_member_day goes, two counter upserts fewer per event

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Nothing is lost: every member-day counter was a sum over the exchange rows, which stay. A member's
# summary, timeline and alert facts, a circle's participation and concentration, the export and the
# replay's checks now sum the member's side of the exchanges in the window, read from the giver and
# receiver indexes alone: they already hold (generation, side, occurred_on, other party, kind, status,
# minutes) since 0007, so no index changes. A downgrade rebuilds the table from the exchanges.

COUNTERS = (
    "given_minutes", "given_count", "received_minutes", "received_count",
    "pending_given_minutes", "pending_given_count", "pending_received_minutes", "pending_received_count",
)  # fmt: skip


def upgrade() -> None:
    op.drop_table("balance_member_day")


def downgrade() -> None:
    op.create_table(
        "balance_member_day",
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        *[sa.Column(c, sa.BigInteger(), server_default="0", nullable=False) for c in COUNTERS],
        sa.PrimaryKeyConstraint("generation", "member_id", "day", "kind"),
        sqlite_with_rowid=False,
    )

    # Recorded exchanges are pending, acknowledged ones settled; disputed and withdrawn ones count nowhere.
    def side(member: str, prefix: str) -> str:
        zeros = {c: "0" for c in COUNTERS}
        sums = {**zeros,
                f"{prefix}_minutes": "SUM(CASE WHEN status = 'acknowledged' THEN minutes ELSE 0 END)",
                f"{prefix}_count": "SUM(CASE WHEN status = 'acknowledged' THEN 1 ELSE 0 END)",
                f"pending_{prefix}_minutes": "SUM(CASE WHEN status = 'recorded' THEN minutes ELSE 0 END)",
                f"pending_{prefix}_count": "SUM(CASE WHEN status = 'recorded' THEN 1 ELSE 0 END)"}
        return (f"SELECT generation, {member} AS member_id, occurred_on AS day, kind, "
                + ", ".join(f"{sums[c]} AS {c}" for c in COUNTERS)
                + " FROM balance_exchanges WHERE status IN ('acknowledged', 'recorded')"
                f" GROUP BY generation, {member}, occurred_on, kind")

    both = f"{side('giver', 'given')} UNION ALL {side('receiver', 'received')}"
    op.execute(
        f"INSERT INTO balance_member_day (generation, member_id, day, kind, {', '.join(COUNTERS)})"
        f" SELECT generation, member_id, day, kind, {', '.join(f'SUM({c})' for c in COUNTERS)}"
        f" FROM ({both}) AS sides GROUP BY generation, member_id, day, kind"
    )
