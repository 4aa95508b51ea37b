"""members: the first day available again after a pause

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("balance_members", sa.Column("available_since", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("balance_members") as batch:
        batch.drop_column("available_since")
