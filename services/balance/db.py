"""balance's database as reciprocity.common.db opens and migrates it (SQLite by default, PostgreSQL by
URL): its alembic schema and its SQLite tuning. Engines and migrations themselves are made in common/db.py.

`make_engine(url, immediate=...)` and `migrate(engine)` are common.db's, bound to these two values (the
names the balance code, its tests and the bench call); `migrate` also builds the side indexes a crash in
a catch-up may have left missing (see projection.BalanceProjection)."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import sqlalchemy as sa
from reciprocity.common import db
from sqlalchemy.engine import Connection, Engine

from . import tables
from .tables import metadata

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

SCHEMA = db.Schema(service="balance", migrations=MIGRATIONS_DIR, version_table="balance_alembic_version",
                   metadata=metadata, table_prefix="balance_")

# The projection's upserts land all over the counter tables: a big page cache and memory-mapped reads keep
# them off the read() path, and rarer, larger checkpoints coalesce page writes. Its batches are large, so a
# second writer (another balance worker, a replay) may wait up to a minute for the write lock.
SQLITE = db.SqliteTuning(
    busy_timeout_s=60.0,
    cache_mb=int(os.environ.get("BALANCE_SQLITE_CACHE_MB", "256")),
    mmap_mb=int(os.environ.get("BALANCE_SQLITE_MMAP_MB", "1024")),
    checkpoint_pages=int(os.environ.get("BALANCE_SQLITE_CHECKPOINT_PAGES", "10000")),
    temp_store_memory=True,
)

make_engine = partial(db.make_engine, sqlite=SQLITE)


def migrate(engine: Engine) -> None:
    """The schema at its newest revision, with the side indexes of the exchanges that a catch-up drops
    while it runs (projection.BalanceProjection) built again if a crash left them missing."""
    db.migrate(engine, schema=SCHEMA)
    with engine.begin() as conn:
        create_side_indexes(conn)


def create_side_indexes(conn: Connection) -> None:
    """Build the side indexes of the exchanges where they are missing (quick where they are there)."""
    for index in tables.EXCHANGE_SIDE_INDEXES:
        conn.execute(sa.schema.CreateIndex(index, if_not_exists=True))
