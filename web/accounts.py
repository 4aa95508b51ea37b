"""Web sign-in accounts: a password hash per member, kept out of the event log on purpose.

Members themselves live in the directory (the ledger's events, projected by balance); the web only
keeps `web_accounts(member_id, password_hash, created_at)` in its own database (DATABASE_URL). Hashes
are Argon2id (argon2-cffi's defaults, RFC 9106's second recommended profile). The same database holds
the server side of sessions (`web_sessions`, see web/sessions.py) and the sign-in failure counters
(`web_login_failures`, see web/throttle.py), so several web processes share them. The three tables are
made by alembic migrations (web/migrations), like every service's, through reciprocity.common.db.

Setting a password ends every session of the member: whoever held the old one is signed out.

`set_password(database_url, member_id, password)` is what the seed command and `reciprocity account
set-password` call; the app uses an `AccountStore` it keeps for its lifetime.
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from reciprocity.common.db import Schema, SqliteTuning, make_engine, migrate
from reciprocity.contracts.ids import SLUG_RE
from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    select,
    update,
)

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # hashing a megabyte of "password" is a cheap denial of service

metadata = MetaData()

web_accounts = Table(
    "web_accounts",
    metadata,
    Column("member_id", String(64), primary_key=True),
    Column("password_hash", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# One row per signed-in session: the cookie carries a random token, the table its SHA-256 (a copy of the
# database opens no session). Signing out deletes the row; so does any password change, for every row.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("member_id", String(64), nullable=False, index=True),
    Column("created_at", Float, nullable=False),  # epoch seconds: the absolute lifetime counts from here
    Column("seen_at", Float, nullable=False),  # the idle lifetime counts from here
)

# Failed sign-ins per key ("account:<id>", "address:<ip>"): failures in the current window, when it began,
# and when the last one happened (the per-account delay grows from it).
web_login_failures = Table(
    "web_login_failures",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_start", Float, nullable=False),
    Column("last_failure", Float, nullable=False),
)

# Created by the alembic migrations in web/migrations (version table web_alembic_version), like every
# service's schema; its first revision adopts a database that `metadata.create_all` made before.
SCHEMA = Schema(service="web", migrations=Path(__file__).resolve().parent / "migrations",
                version_table="web_alembic_version", metadata=metadata, table_prefix="web_")
# Requests wait for the write lock a short while, not a projection's minute; every write transaction starts
# with its write (so a deferred BEGIN never has to upgrade a read lock); FULL: a changed password survives
# a power cut.
SQLITE = SqliteTuning(busy_timeout_s=15.0, synchronous="FULL")

# Argon2id with OWASP's recommended parameters (Password Storage Cheat Sheet: 19 MiB, 2 passes, one
# lane), not argon2-cffi's defaults (RFC 9106's second profile: 64 MiB, 3 passes, 4 lanes), which cost
# 0.25 s of CPU a sign-in: on two cores a burst of 45 members signing in at once queued for over 10 s.
# These cost 0.03 s. Hashes made with other parameters are redone at the next sign-in (verify).
_argon2 = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


class _BoundedHasher:
    """Argon2id with at most one hash or verification per core at a time in this process.

    Each is memory-hard by design; unbounded, a burst of sign-ins (a team arriving at 9:00, every demo
    member at once) runs them all together, each as slow as all of them, and thrashes memory:
    measured, 33 of 44 concurrent sign-ins took over 10 s. Queued, each runs at full speed and the
    burst drains in about (sign-ins / cores) x one hash."""

    def __init__(self, hasher: PasswordHasher, slots: int) -> None:
        self._hasher = hasher
        self._slots = threading.BoundedSemaphore(slots)

    def hash(self, password: str) -> str:
        with self._slots:
            return self._hasher.hash(password)

    def verify(self, stored: str, password: str) -> bool:
        with self._slots:
            return self._hasher.verify(stored, password)

    def check_needs_rehash(self, stored: str) -> bool:
        return self._hasher.check_needs_rehash(stored)


_hasher = _BoundedHasher(_argon2, max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                      else (os.cpu_count() or 1)))
# Verified against when there is no account, so "no such member" takes as long as "wrong password".
_DUMMY_HASH = _hasher.hash("no account has this password")


class AccountStore:
    def __init__(self, database_url: str) -> None:
        self.engine = make_engine(database_url, immediate=False, sqlite=SQLITE)
        migrate(self.engine, SCHEMA)  # once per process and URL (see `store`); a no-op when up to date

    def set_password(self, member_id: str, password: str) -> None:
        if not SLUG_RE.match(member_id):
            raise ValueError(f"{member_id!r} is not a member id")
        check_password_rules(password)
        hashed = _hasher.hash(password)
        with self.engine.begin() as conn:
            done = conn.execute(
                update(web_accounts).where(web_accounts.c.member_id == member_id).values(password_hash=hashed)
            )
            if done.rowcount == 0:
                conn.execute(web_accounts.insert().values(
                    member_id=member_id, password_hash=hashed, created_at=datetime.now(UTC)
                ))
            # Whoever held the old password (or a cookie from then) is signed out everywhere.
            conn.execute(delete(web_sessions).where(web_sessions.c.member_id == member_id))

    def verify(self, member_id: str, password: str) -> bool:
        if len(password) > MAX_PASSWORD_LENGTH:
            return False
        with self.engine.connect() as conn:
            stored = conn.execute(
                select(web_accounts.c.password_hash).where(web_accounts.c.member_id == member_id)
            ).scalar_one_or_none()
        try:
            _hasher.verify(stored or _DUMMY_HASH, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        if stored is None:
            return False
        if _hasher.check_needs_rehash(stored):
            # Parameters were raised since this hash was made: upgrade it while we know the password.
            with self.engine.begin() as conn:
                conn.execute(update(web_accounts).where(web_accounts.c.member_id == member_id)
                             .values(password_hash=_hasher.hash(password)))
        return True

    def remove(self, member_id: str) -> bool:
        """Delete a forgotten member's account, every session of theirs and the sign-in failures counted
        against their id. False when there was no account."""
        with self.engine.begin() as conn:
            conn.execute(delete(web_sessions).where(web_sessions.c.member_id == member_id))
            conn.execute(delete(web_login_failures).where(web_login_failures.c.key == f"account:{member_id}"))
            return conn.execute(delete(web_accounts).where(web_accounts.c.member_id == member_id)).rowcount > 0

    def has_account(self, member_id: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(
                select(web_accounts.c.member_id).where(web_accounts.c.member_id == member_id)
            ).first() is not None

    def ping(self) -> str | None:
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1))
        except Exception as err:  # any driver error means "cannot sign anyone in"
            return f"{type(err).__name__}: {err}"[:200]
        return None


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")


_stores: dict[str, AccountStore] = {}
_stores_lock = threading.Lock()


def store(database_url: str) -> AccountStore:
    """One store (one engine and pool) per database URL per process."""
    with _stores_lock:
        if database_url not in _stores:
            _stores[database_url] = AccountStore(database_url)
        return _stores[database_url]


def set_password(database_url: str, member_id: str, password: str) -> None:
    """Create or replace `member_id`'s password. Raises ValueError for a bad id or a too-short password."""
    store(database_url).set_password(member_id, password)


def verify(database_url: str, member_id: str, password: str) -> bool:
    """True when `member_id` has an account and `password` matches it."""
    return store(database_url).verify(member_id, password)

