"""the latest correction of an exchange, for the other party to see what changed (ExchangeCorrected)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("balance_exchanges") as batch:
        batch.add_column(sa.Column("correction", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("balance_exchanges") as batch:
        batch.drop_column("correction")
