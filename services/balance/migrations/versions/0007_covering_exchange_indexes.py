"""a member's flows from the exchanges: the giver and receiver indexes cover other party, kind, status, minutes

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Relationships and a circle's flows over a window are summed from the exchanges in the window, read from
# these indexes alone (issue 13: a page's cost must not grow with the member's history; balance_pair_day
# read row by row did). The same number of index entries per exchange as before, only wider. Rebuilding
# an index carries every existing exchange over; nothing else changes.
TAIL = ["kind", "status", "minutes"]


def _side_indexes(tail: list[str]) -> None:
    op.drop_index("ix_balance_exchanges_giver", table_name="balance_exchanges")
    op.drop_index("ix_balance_exchanges_receiver", table_name="balance_exchanges")
    op.create_index("ix_balance_exchanges_giver", "balance_exchanges",
                    ["generation", "giver", "occurred_on", *(["receiver", *tail] if tail else [])])
    op.create_index("ix_balance_exchanges_receiver", "balance_exchanges",
                    ["generation", "receiver", "occurred_on", *(["giver", *tail] if tail else [])])


def upgrade() -> None:
    _side_indexes(TAIL)


def downgrade() -> None:
    _side_indexes([])
