"""the appreciation wall from an index: shared, acknowledged exchanges by the time they were acknowledged

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Partial: only exchanges on the wall have an entry, so recording (the projection's hot path) pays nothing
# for it. The query repeats this condition word for word (queries.WALL), which is how SQLite and
# PostgreSQL know the index holds every row it asks for.
WALL = "status = 'acknowledged' AND shared_by_recorder AND shared_by_acknowledger"


def upgrade() -> None:
    op.create_index("ix_balance_exchanges_wall", "balance_exchanges", ["generation", "updated_at"],
                    sqlite_where=sa.text(WALL), postgresql_where=sa.text(WALL))


def downgrade() -> None:
    op.drop_index("ix_balance_exchanges_wall", table_name="balance_exchanges")
