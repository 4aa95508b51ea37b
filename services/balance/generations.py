"""Blue/green generations of the read models.

Every read-model row carries its generation. Exactly one generation is `active`: the service projects
into it and the read API serves it. A replay creates a `building` generation, fills it from offset 0
while the active one keeps serving, verifies it and switches in one transaction (old -> `retired`,
new -> `active`). The retired one is kept until the next replay starts, which deletes it.

A replay that fails marks its generation `failed` and drops its rows (the next replay deletes the row).

A running service notices the switch by itself: its next batch finds the new generation's stored
offset is not where the batch starts, raises StaleBatch, and the consumer seeks to the new
generation's offsets.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from . import tables as t

ACTIVE, BUILDING, RETIRED, FAILED = "active", "building", "retired", "failed"
BUILT = "built"  # built and verified by a replay with --no-switch; kept until the next replay


class NoActiveGeneration(RuntimeError):
    pass


class ReplayRunning(RuntimeError):
    """Another replay holds the replay lock of this database."""


# Any fixed number: the PostgreSQL advisory lock a replay holds while it runs.
_REPLAY_LOCK_ID = 0x6BA1A2CF


@contextmanager
def replay_lock(engine: Engine) -> Iterator[None]:
    """Held by a running replay for all its run, and let go by the operating system or the database
    when its process ends, however it ends (SIGKILL, the OOM killer): so a `building` generation whose
    lock is free belongs to no live replay (`replay_running`), and two replays never build at once (the
    second would delete the first one's generation as unfinished). PostgreSQL: a session advisory lock
    on a connection of its own; SQLite: an flock on a file beside the database."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            if not conn.execute(sa.text("SELECT pg_try_advisory_lock(:id)"), {"id": _REPLAY_LOCK_ID}).scalar():
                raise ReplayRunning("another replay of this database is running")
            conn.commit()  # the lock is the session's; no transaction left open for the whole replay
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:id)"), {"id": _REPLAY_LOCK_ID})
                conn.commit()
        return
    path = _sqlite_lock_path(engine)
    if path is None:  # an in-memory database: no other process can see it
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ReplayRunning("another replay of this database is running") from None
        yield
    finally:
        os.close(fd)  # lets the lock go


def replay_running(engine: Engine) -> bool:
    """Whether a live replay holds the lock of this database now (tried without waiting)."""
    try:
        with replay_lock(engine):
            return False
    except ReplayRunning:
        return True


def _sqlite_lock_path(engine: Engine) -> str | None:
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return f"{database}.replay-lock"


def active_generation(conn: Connection) -> int:
    gen = conn.execute(_ACTIVE_ID).scalar()
    if gen is None:
        raise NoActiveGeneration("no active balance generation: run the migrations")
    return int(gen)


_ACTIVE_ID = sa.select(t.generations.c.id).where(t.generations.c.status == ACTIVE)

# Bumped by this process whenever it changes which generations exist or which one is active, so a memo in
# the same process (a test's replay, the CLI's) sees the change at its next read, not after its age.
_changes = 0


def _changed() -> None:
    global _changes
    _changes += 1


class ActiveGenerationMemo:
    """The active generation as the read API serves it: read once, then kept for `max_age_s`.

    Querying it on every read cost a statement per request (about a twentieth of a read's CPU). A
    replay in another process switches generations rarely and keeps the retired one's rows until the
    next replay starts, so a reader that keeps the old number for at most `max_age_s` after the switch
    answers from a complete, consistent generation and then follows the switch; a switch or new
    building generation made by this process is seen at once."""

    def __init__(self, max_age_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_age_s = max_age_s
        self._clock = clock
        self._known: tuple[int, float, int] | None = None  # (generation, read until, _changes when read)

    def get(self, conn: Connection) -> int:
        now, changes = self._clock(), _changes
        known = self._known  # one read of the tuple: threads share the memo
        if known is not None and now < known[1] and known[2] == changes:
            return known[0]
        gen = active_generation(conn)
        self._known = (gen, now + self._max_age_s, changes)
        return gen


def list_generations(conn: Connection) -> list[dict]:
    rows = conn.execute(sa.select(t.generations).order_by(t.generations.c.id)).mappings()
    return [dict(r) for r in rows]


def drop_generation_rows(conn: Connection, generation: int) -> None:
    for table in t.GENERATION_TABLES:
        conn.execute(sa.delete(table).where(table.c.generation == generation))


def start_building(conn: Connection) -> int:
    """Delete every retired or unfinished generation, then create a new `building` one."""
    _changed()
    stale = [r["id"] for r in list_generations(conn) if r["status"] != ACTIVE]
    for gen in stale:
        drop_generation_rows(conn, gen)
    if stale:
        conn.execute(sa.delete(t.generations).where(t.generations.c.id.in_(stale)))
    new = (conn.execute(sa.select(sa.func.max(t.generations.c.id))).scalar() or 0) + 1
    new = max(new, max(stale, default=0) + 1)  # never reuse a number a reader may still remember
    conn.execute(sa.insert(t.generations).values(id=new, status=BUILDING, created_at=datetime.now(UTC)))
    return new


def mark_failed(conn: Connection, generation: int) -> None:
    """A replay that did not finish: its row stays as `failed` (when it started, that it failed) until
    the next replay starts, so status pages say so instead of showing it building. (Its rows are for the
    caller to drop, in a transaction of their own: the table that failed may fail again.)"""
    conn.execute(sa.update(t.generations)
                 .where(t.generations.c.id == generation, t.generations.c.status == BUILDING)
                 .values(status=FAILED))


def replay_generations(conn: Connection, running: bool) -> tuple[dict | None, dict | None]:
    """(the generation a live replay is building, the one of the latest replay that failed or died).

    A `building` generation while no replay runs (`running` False, from `replay_running`) was left by a
    replay that could not mark it failed (killed, or the database away when it failed): it is shown as
    failed, never as building for ever; the next replay deletes it."""
    rows = [g for g in list_generations(conn) if g["status"] in (BUILDING, BUILT, FAILED)]
    latest = rows[-1] if rows else None
    if latest is None:
        return None, None
    if latest["status"] == BUILT or (latest["status"] == BUILDING and running):
        return latest, None
    return None, {**latest, "status": FAILED, "interrupted": latest["status"] == BUILDING}


def mark_built(conn: Connection, generation: int) -> None:
    """A replay with --no-switch finished and verified `generation`: complete, not active, not dying."""
    conn.execute(sa.update(t.generations)
                 .where(t.generations.c.id == generation, t.generations.c.status == BUILDING)
                 .values(status=BUILT))


def switch_to(conn: Connection, generation: int) -> int:
    """Make `generation` active and retire the current one; returns the retired generation id."""
    _changed()
    old = active_generation(conn)
    conn.execute(sa.update(t.generations).where(t.generations.c.id == old).values(status=RETIRED))
    done = conn.execute(
        sa.update(t.generations)
        .where(t.generations.c.id == generation, t.generations.c.status == BUILDING)
        .values(status=ACTIVE, activated_at=datetime.now(UTC))
    )
    if done.rowcount != 1:
        raise RuntimeError(f"generation {generation} is not a building generation")
    return old
