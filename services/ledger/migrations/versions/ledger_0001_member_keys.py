"""The ledger's key store (one wrapped key or tombstone per member), and the adoption of a key store that
`metadata.create_all` made before it was under migrations: the table is kept as it is (create_all made it
from the same definition, and its keys are the only copy there is), only a missing one is created.

Revision ID: ledger_0001
Revises:
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "ledger_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "ledger_member_keys" not in set(sa.inspect(op.get_bind()).get_table_names()):
        op.create_table(
            "ledger_member_keys",
            sa.Column("member_id", sa.String(64), primary_key=True),
            sa.Column("wrapped_key", sa.LargeBinary),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("forgotten_at", sa.DateTime(timezone=True)),
            sa.Column("forgotten_by", sa.String(64)),
        )


def downgrade() -> None:
    op.drop_table("ledger_member_keys")
