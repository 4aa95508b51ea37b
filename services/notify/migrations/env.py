"""Alembic environment of notify (reciprocity.common.db.run_alembic_env): its own version table, its
tables only, so one database can hold every service's tables."""

from reciprocity.common.db import run_alembic_env
from reciprocity.notify.store import SCHEMA

run_alembic_env(SCHEMA)
