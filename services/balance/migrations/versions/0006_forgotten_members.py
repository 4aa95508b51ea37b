"""forgotten members: who was forgotten, when, at whose request (per generation)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "balance_forgotten",
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("forgotten_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("generation", "member_id"),
    )


def downgrade() -> None:
    op.drop_table("balance_forgotten")
