"""Engines and schema migrations: one way for every service's database (balance, notify, the web).

- `make_engine(url)`: SQLite (a private 0600 file, WAL, a busy timeout, transactions begun by us) or
  PostgreSQL (psycopg 3; `postgresql://` and `postgres://` both accepted, as hosting platforms hand them
  out; a pool that checks connections before use, a connect timeout so /health answers instead of hanging).
- `migrate(engine, schema)`: alembic to head under a lock (PostgreSQL: an advisory lock; SQLite: the write
  lock), so concurrent starters of one or several services never run a migration twice.
- `run_alembic_env(schema)`: the body of every service's alembic `env.py`: its own version table, its
  metadata for autogenerate, and a filter so an autogenerate on a database shared by every service only
  ever looks at (and never proposes to drop) the tables of the service it runs for.

Each service describes its database once (`Schema`, and a `SqliteTuning` where it needs one): balance in
`reciprocity.balance.db`, notify in `reciprocity.notify.store`, the web in `reciprocity.web.accounts`.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .files import private_sqlite_file

# Execution options read when a transaction begins on SQLite (see make_engine).
READ_ONLY = "reciprocity_read_only"
WRITE_LOCK = "reciprocity_write_lock"

# Any fixed number: serialises the migrations of every service starting at once on one PostgreSQL database.
_MIGRATION_LOCK_ID = 0x6BA1A2CE
_PG_CONNECT_TIMEOUT_S = 10


@dataclass(frozen=True)
class SqliteTuning:
    """How a service's SQLite database is opened. The defaults suit a service whose transactions are
    short; a projection writing large batches waits longer and caches more (balance)."""

    busy_timeout_s: float = 30.0  # how long a writer waits for another's lock before "database is locked"
    journal_mode: str = "WAL"  # WAL: readers never wait for the writer
    synchronous: str = "NORMAL"  # WAL + NORMAL: durable at checkpoints, never torn
    cache_mb: int | None = None  # page cache (SQLite's default: 2 MB)
    mmap_mb: int | None = None  # memory-mapped reads
    checkpoint_pages: int | None = None  # WAL auto-checkpoint (SQLite's default: 1000 pages)
    temp_store_memory: bool = False
    secure_delete: bool = False  # deleted content is zeroed in the file, not just freed


def _pragma(cursor: Any, pragma: str, patience_s: float) -> None:
    """Run `PRAGMA pragma`, waiting up to `patience_s` while another connection holds the database: SQLite
    answers "database is locked" at once, without its busy handler, to a connection switching a fresh
    file to WAL while another starter does the same or migrates (seen in CI: three processes starting
    together on a new database)."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            cursor.execute(f"PRAGMA {pragma}")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def normalise_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3 here (psycopg2 is not installed)."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


def make_engine(url: str, *, immediate: bool = True, sqlite: SqliteTuning | None = None) -> Engine:
    """An engine for `url`.

    On SQLite, every transaction is begun by us (pysqlite's own BEGIN is lazy and deferred): with
    `immediate`, BEGIN IMMEDIATE, so a read-then-write transaction never dies on a lock upgrade while
    another process or thread writes; without it, a deferred BEGIN (readers, and writers whose first
    statement writes). A connection with the READ_ONLY execution option (`reading`) always begins
    deferred, so under WAL it never waits for a writer; one with WRITE_LOCK always takes the write lock.
    """
    url = normalise_url(url)
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10,
                                connect_args={"connect_timeout": _PG_CONNECT_TIMEOUT_S})
    tuning = sqlite or SqliteTuning()
    private_sqlite_file(sa.engine.make_url(url).database)
    engine = sa.create_engine(url, connect_args={"timeout": tuning.busy_timeout_s, "check_same_thread": False})
    pragmas = [f"journal_mode={tuning.journal_mode}", f"synchronous={tuning.synchronous}",
               f"busy_timeout={int(tuning.busy_timeout_s * 1000)}"]
    if tuning.cache_mb is not None:
        pragmas.append(f"cache_size=-{tuning.cache_mb * 1024}")
    if tuning.mmap_mb is not None:
        pragmas.append(f"mmap_size={tuning.mmap_mb * 1024 * 1024}")
    if tuning.checkpoint_pages is not None:
        pragmas.append(f"wal_autocheckpoint={tuning.checkpoint_pages}")
    if tuning.temp_store_memory:
        pragmas.append("temp_store=MEMORY")
    if tuning.secure_delete:
        pragmas.append("secure_delete=ON")

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            _pragma(cursor, pragma, tuning.busy_timeout_s)
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        options = connection.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":  # no transaction at all (VACUUM, say)
            return
        if options.get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")
        elif immediate or options.get(WRITE_LOCK):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")

    return engine


def reading(engine: Engine) -> Connection:
    """A connection for reads only (health, an API, a look for due rows): on SQLite it does not take the
    write lock, so a long batch being applied never makes a reader wait."""
    return engine.connect().execution_options(**{READ_ONLY: True})


@dataclass(frozen=True)
class Schema:
    """One service's tables under alembic: where its migrations are, its own version table (so one
    database can hold every service), its metadata (what autogenerate compares with), and the prefix
    every table of it carries."""

    service: str
    migrations: Path
    version_table: str
    metadata: sa.MetaData
    table_prefix: str

    def owns(self, name: str | None, type_: str, _parent: object = None) -> bool:
        """alembic's include_name: of the tables, only this service's (not its version table)."""
        return type_ != "table" or bool(name and name.startswith(self.table_prefix) and name != self.version_table)


def migrate(engine: Engine, schema: Schema) -> None:
    """Bring `schema` to its newest revision (idempotent), holding a lock while migrating: PostgreSQL's
    advisory lock, SQLite's write lock, so concurrent starters wait and then find nothing to do."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(schema.migrations))
    with engine.connect().execution_options(**{WRITE_LOCK: True}) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def run_alembic_env(schema: Schema) -> None:
    """The body of `schema`'s alembic env.py: migrate() passes its open connection; `alembic -c ...` on the
    command line (autogenerate included) connects to `sqlalchemy.url` itself."""
    from alembic import context

    config = context.config

    def run(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=schema.metadata,
                          version_table=schema.version_table, render_as_batch=True, include_name=schema.owns)
        with context.begin_transaction():
            context.run_migrations()

    connection = config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.begin() as conn:
            run(conn)
    finally:
        engine.dispose()
