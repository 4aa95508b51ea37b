"""notify: what emails about herself each member wants (NotificationSettingsChanged).

Revision ID: notify_0003
Revises: notify_0002
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "notify_0003"
down_revision = "notify_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notify_members") as batch:
        batch.add_column(sa.Column("own_alert_emails", sa.Boolean, nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("daily_digest", sa.Boolean, nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("notify_members") as batch:
        batch.drop_column("daily_digest")
        batch.drop_column("own_alert_emails")
