"""notify's first schema: directory view, alerts, delivery log, consumed offsets.

Revision ID: notify_0001
Revises:
Create Date: 2025-01-01
"""

import sqlalchemy as sa
from alembic import op

revision = "notify_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notify_offsets",
        sa.Column("topic", sa.String(200), primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("next_offset", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "notify_members",
        sa.Column("member_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(100)),
        sa.Column("email", sa.String(320)),
        sa.Column("role", sa.String(20)),
        sa.Column("weekly_hours", sa.Float),
        sa.Column("status", sa.String(10), nullable=False, server_default="active"),
        sa.Column("paused_until", sa.Date),
    )
    op.create_table(
        "notify_memberships",
        sa.Column("member_id", sa.String(64), primary_key=True),
        sa.Column("circle_id", sa.String(64), primary_key=True),
    )
    op.create_table(
        "notify_circles",
        sa.Column("circle_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(100)),
        sa.Column("parent", sa.String(64)),
    )
    op.create_table(
        "notify_circle_leads",
        sa.Column("circle_id", sa.String(64), primary_key=True),
        sa.Column("member_id", sa.String(64), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
    )
    op.create_table(
        "notify_alerts",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("member_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("envelope", sa.Text, nullable=False),
        sa.Column("signal_at", sa.DateTime, nullable=False),
        sa.Column("source_partition", sa.Integer, nullable=False),
        sa.Column("source_offset", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("first_seen_at", sa.DateTime, nullable=False),
        sa.Column("resolved_at", sa.DateTime),
    )
    op.create_index("ix_notify_alerts_status", "notify_alerts", ["status"])
    op.create_table(
        "notify_deliveries",
        sa.Column("alert_id", sa.String(36), primary_key=True),
        sa.Column("recipient", sa.String(64), primary_key=True),
        sa.Column("member_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("signal_type", sa.String(40), nullable=False),
        sa.Column("to_address", sa.String(320)),
        sa.Column("to_name", sa.String(100)),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("text_body", sa.Text, nullable=False),
        sa.Column("html_body", sa.Text, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("signal_at", sa.DateTime, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime),
        sa.Column("lease_until", sa.DateTime),
        sa.Column("sent_at", sa.DateTime),
    )
    op.create_index("ix_notify_deliveries_due", "notify_deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_notify_deliveries_rate", "notify_deliveries", ["recipient", "member_id", "kind", "signal_at"])


def downgrade() -> None:
    for index, table in (("ix_notify_deliveries_rate", "notify_deliveries"),
                         ("ix_notify_deliveries_due", "notify_deliveries"),
                         ("ix_notify_alerts_status", "notify_alerts")):
        op.drop_index(index, table_name=table)
    for table in ("notify_deliveries", "notify_alerts", "notify_circle_leads", "notify_circles",
                  "notify_memberships", "notify_members", "notify_offsets"):
        op.drop_table(table)
