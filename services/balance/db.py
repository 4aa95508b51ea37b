"""Engines and schema migrations for the balance database (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from reciprocity.common.files import private_sqlite_file
from sqlalchemy import event
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any fixed number: serialises concurrent migrations of several balance processes on PostgreSQL.
_MIGRATION_LOCK_ID = 0x6BA1A2CE
_SQLITE_CACHE_MB = int(os.environ.get("BALANCE_SQLITE_CACHE_MB", "256"))
_SQLITE_MMAP_MB = int(os.environ.get("BALANCE_SQLITE_MMAP_MB", "1024"))
_SQLITE_CHECKPOINT_PAGES = int(os.environ.get("BALANCE_SQLITE_CHECKPOINT_PAGES", "10000"))


def normalise_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3 here (psycopg2 is not installed)."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


def make_engine(url: str, *, immediate: bool = True) -> Engine:
    """An engine for `url`. On SQLite: WAL, a busy timeout, and (with `immediate`) every transaction
    begins with BEGIN IMMEDIATE, so a read-then-write transaction never dies on a lock upgrade while
    another process (a second balance worker, a replay) writes."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        private_sqlite_file(sa.engine.make_url(url).database)
        engine = sa.create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (pysqlite's own is lazy)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; WAL keeps it consistent
            cur.execute("PRAGMA busy_timeout=60000")
            # The projection's upserts land all over the counter tables: a big page cache and memory-mapped
            # reads keep them off the read() path, and rarer, larger checkpoints coalesce page writes.
            cur.execute(f"PRAGMA cache_size=-{_SQLITE_CACHE_MB * 1024}")
            cur.execute(f"PRAGMA mmap_size={_SQLITE_MMAP_MB * 1024 * 1024}")
            cur.execute(f"PRAGMA wal_autocheckpoint={_SQLITE_CHECKPOINT_PAGES}")
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent; safe with concurrent starters)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
