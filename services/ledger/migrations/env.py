"""Alembic environment of the ledger's key store (reciprocity.common.db.run_alembic_env): its own version
table, its tables only, like every service's schema."""

from reciprocity.common.db import run_alembic_env
from reciprocity.ledger.keystore import SCHEMA

run_alembic_env(SCHEMA)
