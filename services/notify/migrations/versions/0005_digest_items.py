"""notify: what the daily digest tells each member (exchanges waiting for her, disputes, withdrawals).

Revision ID: notify_0005
Revises: notify_0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "notify_0005"
down_revision = "notify_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notify_digest_items",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("member_id", sa.String(64), nullable=False),
        sa.Column("exchange_id", sa.String(64), nullable=False),
        sa.Column("what", sa.String(12), nullable=False),
        sa.Column("other_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("minutes", sa.Integer, nullable=False),
        sa.Column("occurred_on", sa.Date, nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("resolved", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("digest_id", sa.String(36)),
    )
    op.create_index("ix_notify_digest_items_member", "notify_digest_items", ["member_id", "digest_id"])
    op.create_index("ix_notify_digest_items_exchange", "notify_digest_items", ["exchange_id"])


def downgrade() -> None:
    op.drop_table("notify_digest_items")
