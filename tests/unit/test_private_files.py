"""The SQLite files of balance, notify and the web (password hashes, emails, notes) are created readable
by their owner only, whatever the umask, and a file left world-readable by an older version is tightened."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import sqlalchemy as sa
from reciprocity.balance.db import make_engine as balance_engine
from reciprocity.common.db import make_engine
from reciprocity.web.accounts import AccountStore


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_files_are_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        (tmp_path / "old.db").write_bytes(b"")
        (tmp_path / "old.db").chmod(0o644)
        engines = [balance_engine(f"sqlite:///{tmp_path}/balance.db"), make_engine(f"sqlite:///{tmp_path}/notify.db"),
                   AccountStore(f"sqlite:///{tmp_path}/sub/web.db").engine, make_engine(f"sqlite:///{tmp_path}/old.db")]
        for engine in engines:
            with engine.begin() as conn:
                conn.execute(sa.text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
                conn.execute(sa.text("INSERT INTO t VALUES (1)"))
            database = Path(engine.url.database or "")
            assert mode(database) == 0o600, database
            wal = Path(f"{database}-wal")
            assert wal.exists() and mode(wal) == 0o600, wal  # SQLite copies the database file's mode
            engine.dispose()
    finally:
        os.umask(old)
