"""Alembic environment of the balance service (reciprocity.common.db.run_alembic_env): its own version
table, its tables only, so one PostgreSQL database can hold every service's tables."""

from reciprocity.balance.db import SCHEMA
from reciprocity.common.db import run_alembic_env

run_alembic_env(SCHEMA)
