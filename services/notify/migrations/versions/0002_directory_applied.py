"""notify: remember applied directory events, so a repeated event id is applied once.

Revision ID: notify_0002
Revises: notify_0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "notify_0002"
down_revision = "notify_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("notify_directory_applied", sa.Column("event_id", sa.String(36), primary_key=True))


def downgrade() -> None:
    op.drop_table("notify_directory_applied")
