"""Alembic environment of the balance service: its own version table, so one PostgreSQL database can
hold every service's tables. Run programmatically by `reciprocity.balance.db.migrate(engine)`, which
passes its open connection in `config.attributes["connection"]`."""

from alembic import context
from reciprocity.balance.tables import metadata

VERSION_TABLE = "balance_alembic_version"

config = context.config


def _ours(name: str | None, type_: str, _parent: object) -> bool:
    """Autogenerate looks at balance tables only: other services may share the database."""
    return type_ != "table" or bool(name and name.startswith("balance_") and name != VERSION_TABLE)


connection = config.attributes.get("connection")
if connection is None:  # `alembic` on the command line: use sqlalchemy.url from the config
    from sqlalchemy import create_engine

    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=metadata, version_table=VERSION_TABLE,
                          render_as_batch=True, include_name=_ours)
        context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE,
                      render_as_batch=True, include_name=_ours)
    with context.begin_transaction():
        context.run_migrations()
