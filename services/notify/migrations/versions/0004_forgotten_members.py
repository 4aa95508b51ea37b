"""notify: forgotten members (nothing is mailed about or to them again)

Revision ID: notify_0004
Revises: notify_0003
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "notify_0004"
down_revision = "notify_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("notify_forgotten", sa.Column("member_id", sa.String(64), primary_key=True))


def downgrade() -> None:
    op.drop_table("notify_forgotten")
