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

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import tables as t

ACTIVE, BUILDING, RETIRED, FAILED = "active", "building", "retired", "failed"


class NoActiveGeneration(RuntimeError):
    pass


def active_generation(conn: Connection) -> int:
    gen = conn.execute(sa.select(t.generations.c.id).where(t.generations.c.status == ACTIVE)).scalar()
    if gen is None:
        raise NoActiveGeneration("no active balance generation: run the migrations")
    return int(gen)


def list_generations(conn: Connection) -> list[dict]:
    rows = conn.execute(sa.select(t.generations).order_by(t.generations.c.id)).mappings()
    return [dict(r) for r in rows]


def drop_generation_rows(conn: Connection, generation: int) -> None:
    for table in t.GENERATION_TABLES:
        conn.execute(sa.delete(table).where(table.c.generation == generation))


def start_building(conn: Connection) -> int:
    """Delete every retired or unfinished generation, then create a new `building` one."""
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


def last_failed(conn: Connection) -> dict | None:
    """The failed replay's generation, if the latest replay failed (None once another one started)."""
    rows = [g for g in list_generations(conn) if g["status"] in (BUILDING, FAILED)]
    return rows[-1] if rows and rows[-1]["status"] == FAILED else None


def switch_to(conn: Connection, generation: int) -> int:
    """Make `generation` active and retire the current one; returns the retired generation id."""
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
