"""The ledger's key store: one random key per member, kept outside the log, destroyed to forget.

Its own database (`LEDGER_KEYS_DATABASE_URL`, by default `var/ledger-keys.db`, created 0600), not the
`DATABASE_URL` the read models share, so no other service's credentials reach it. Each key is stored
wrapped (AES-256-GCM) under a key derived from `LEDGER_KEYS_SECRET`, bound to its member id: a copy of
the database alone (a backup, a disk image, a deleted-but-not-vacuumed row) opens nothing without the
secret. Forgetting a member sets their key to NULL and keeps a tombstone (when and by whom), so the key
is never recreated and the id is never registered again. SQLite runs with `secure_delete`, so the
freed cells are zeroed; PostgreSQL is vacuumed after a forgetting, so the old row version goes too.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from reciprocity.common import db as common_db
from reciprocity.common.db import Schema, SqliteTuning, migrate, reading
from reciprocity.common.sealing import NONCE_BYTES, new_member_key
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

metadata = sa.MetaData()
member_keys = sa.Table(
    "ledger_member_keys",
    metadata,
    sa.Column("member_id", sa.String(64), primary_key=True),
    sa.Column("wrapped_key", sa.LargeBinary),  # NULL once the member is forgotten
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("forgotten_at", sa.DateTime(timezone=True)),
    sa.Column("forgotten_by", sa.String(64)),
)

# Created by the alembic migrations in ledger/migrations (version table ledger_alembic_version), like every
# service's schema; its first revision adopts a key store that `metadata.create_all` made before.
SCHEMA = Schema(service="ledger", migrations=Path(__file__).resolve().parent / "migrations",
                version_table="ledger_alembic_version", metadata=metadata, table_prefix="ledger_")


class MemberForgottenError(Exception):
    """The member was forgotten: their key is gone for good, nothing can be sealed for them."""


class KeyStoreBroken(RuntimeError):
    """A stored key does not unwrap: the secret is not the one the store was written with."""


@dataclass(frozen=True)
class Forgetting:
    member_id: str
    forgotten_at: datetime
    forgotten_by: str | None


# Opened by reciprocity.common.db: a rollback journal rather than WAL and secure_delete, so a destroyed
# key's bytes are zeroed in the file at once (a WAL would keep old page images until a checkpoint),
# synchronous FULL: a key handed out is never lost to a power cut.
SQLITE = SqliteTuning(journal_mode="DELETE", synchronous="FULL", secure_delete=True)
make_engine = partial(common_db.make_engine, sqlite=SQLITE)


class KeyStore:
    def __init__(self, engine: Engine, secret: str) -> None:
        if not secret:
            raise ValueError("the key store needs a secret (LEDGER_KEYS_SECRET)")
        self.engine = engine
        self._wrapper = AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                                    info=b"reciprocity/keystore/v1").derive(secret.encode()))
        self._lock = threading.Lock()
        migrate(engine, SCHEMA)  # a no-op when up to date

    # --- keys -----------------------------------------------------------------------------------------

    def key_for(self, member_id: str) -> bytes:
        """The member's key, created on first use. Raises MemberForgottenError for a forgotten member."""
        with self._lock, self.engine.begin() as conn:
            row = conn.execute(sa.select(member_keys).where(member_keys.c.member_id == member_id)).first()
            if row is not None:
                if row.wrapped_key is None:
                    raise MemberForgottenError(member_id)
                return self._unwrap(member_id, row.wrapped_key)
            key = new_member_key()
            conn.execute(sa.insert(member_keys).values(member_id=member_id, wrapped_key=self._wrap(member_id, key),
                                                       created_at=datetime.now(UTC)))
            return key

    def member_keys(self, member_ids: Collection[str]) -> dict[str, bytes | None]:
        """Keys of the members that have one; None for forgotten members; others left out (KeySource)."""
        found: dict[str, bytes | None] = {}
        ids = sorted(set(member_ids))
        with reading(self.engine) as conn:
            for i in range(0, len(ids), 500):
                for row in conn.execute(sa.select(member_keys.c.member_id, member_keys.c.wrapped_key)
                                        .where(member_keys.c.member_id.in_(ids[i:i + 500]))):
                    found[row.member_id] = (None if row.wrapped_key is None
                                            else self._unwrap(row.member_id, row.wrapped_key))
        return found

    def destroy(self, member_id: str, *, by: str) -> bool:
        """Destroy the member's key (keeping a tombstone); False when it was destroyed before."""
        with self._lock:
            with self.engine.begin() as conn:
                row = conn.execute(sa.select(member_keys.c.forgotten_at)
                                   .where(member_keys.c.member_id == member_id)).first()
                if row is not None and row.forgotten_at is not None:
                    return False
                now = datetime.now(UTC)
                if row is None:  # never had a key (registered before sealing): a tombstone all the same
                    conn.execute(sa.insert(member_keys).values(member_id=member_id, wrapped_key=None, created_at=now,
                                                               forgotten_at=now, forgotten_by=by))
                else:
                    conn.execute(sa.update(member_keys).where(member_keys.c.member_id == member_id)
                                 .values(wrapped_key=None, forgotten_at=now, forgotten_by=by))
            self._vacuum()
        log.info("a member's key was destroyed at the request of %s", by)
        return True

    def forgettings(self) -> list[Forgetting]:
        with reading(self.engine) as conn:
            rows = conn.execute(sa.select(member_keys.c.member_id, member_keys.c.forgotten_at,
                                          member_keys.c.forgotten_by)
                                .where(member_keys.c.forgotten_at.is_not(None))
                                .order_by(member_keys.c.forgotten_at)).all()
        return [Forgetting(r.member_id, r.forgotten_at, r.forgotten_by) for r in rows]

    # --- inside ---------------------------------------------------------------------------------------

    def _wrap(self, member_id: str, key: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._wrapper.encrypt(nonce, key, member_id.encode())

    def _unwrap(self, member_id: str, wrapped: bytes) -> bytes:
        try:
            return self._wrapper.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], member_id.encode())
        except InvalidTag as err:
            raise KeyStoreBroken(
                f"the key of {member_id} does not unwrap: LEDGER_KEYS_SECRET is not the one it was stored with"
            ) from err

    def _vacuum(self) -> None:
        """Take the destroyed key's old bytes out of the files too (PostgreSQL keeps dead row versions
        until a vacuum; SQLite's secure_delete already zeroed them, VACUUM also rewrites the file)."""
        try:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                if self.engine.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"VACUUM {member_keys.name}")
                else:
                    conn.exec_driver_sql("VACUUM")
        except sa.exc.DBAPIError as err:  # the key is destroyed; only the tidy-up failed
            log.warning("vacuum after destroying a key failed: %s", err.orig)
