"""Alembic environment of notify: its own version table, so one database can hold every service."""

import sqlalchemy as sa
from alembic import context

VERSION_TABLE = "notify_alembic_version"

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # migrate() passes the service's own connection
        _migrate(connection)
        return
    url = config.get_main_option("sqlalchemy.url")  # `alembic -x` style use by hand
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        _migrate(conn)


def _migrate(connection: sa.Connection) -> None:
    context.configure(connection=connection, version_table=VERSION_TABLE, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run()
