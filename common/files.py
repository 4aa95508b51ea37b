"""Local database files readable by their owner only: they hold password hashes, emails and notes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE = 0o600


def private_sqlite_file(database: str | None) -> None:
    """Create the SQLite file `database` (and its folder) as 0600 before SQLite does, and tighten an
    existing one. SQLite gives its -wal and -shm files the database file's permissions, so they follow."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, PRIVATE))
    for candidate in (path, Path(f"{database}-wal"), Path(f"{database}-shm"), Path(f"{database}-journal")):
        try:
            mode = stat.S_IMODE(candidate.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            candidate.chmod(PRIVATE)
