"""a repeated event id is applied once: what recognises repeats

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("balance_exchanges", sa.Column("status_event_id", sa.String(length=36), nullable=True))
    op.create_table(
        "balance_directory_applied",
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("generation", "event_id"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("balance_directory_applied")
    with op.batch_alter_table("balance_exchanges") as batch:
        batch.drop_column("status_event_id")
