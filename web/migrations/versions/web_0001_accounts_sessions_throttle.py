"""The web's accounts, sessions and sign-in failure counters, and the adoption of a database that
`metadata.create_all` made before the web's tables were under migrations: a table that exists already is
kept as it is (create_all made it from the same definitions), only the missing ones are created.

Revision ID: web_0001
Revises:
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "web_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "web_accounts" not in existing:
        op.create_table(
            "web_accounts",
            sa.Column("member_id", sa.String(64), primary_key=True),
            sa.Column("password_hash", sa.String(255), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        )
    if "web_sessions" not in existing:
        op.create_table(
            "web_sessions",
            sa.Column("token_hash", sa.String(64), primary_key=True),
            sa.Column("member_id", sa.String(64), nullable=False),
            sa.Column("created_at", sa.Float, nullable=False),
            sa.Column("seen_at", sa.Float, nullable=False),
        )
        op.create_index("ix_web_sessions_member_id", "web_sessions", ["member_id"])
    if "web_login_failures" not in existing:
        op.create_table(
            "web_login_failures",
            sa.Column("key", sa.String(128), primary_key=True),
            sa.Column("failures", sa.Integer, nullable=False),
            sa.Column("window_start", sa.Float, nullable=False),
            sa.Column("last_failure", sa.Float, nullable=False),
        )


def downgrade() -> None:
    for table in ("web_login_failures", "web_sessions", "web_accounts"):
        op.drop_table(table)
