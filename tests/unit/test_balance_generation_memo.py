"""The read API's memo of the active generation: read once, followed within its age after a switch made
elsewhere, at once after a switch made in this process."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from reciprocity.balance import tables as t
from reciprocity.balance.db import make_engine, migrate
from reciprocity.balance.generations import (
    ACTIVE,
    BUILDING,
    RETIRED,
    ActiveGenerationMemo,
    active_generation,
    start_building,
    switch_to,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _switch_elsewhere(conn: sa.Connection, new: int) -> None:
    """What a replay in another process does, unseen by this process's bookkeeping."""
    old = active_generation(conn)
    conn.execute(sa.insert(t.generations).values(id=new, status=BUILDING, created_at=datetime.now(UTC)))
    conn.execute(sa.update(t.generations).where(t.generations.c.id == old).values(status=RETIRED))
    conn.execute(sa.update(t.generations).where(t.generations.c.id == new).values(status=ACTIVE))


def test_a_switch_elsewhere_is_followed_once_the_memo_is_older_than_its_age(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/balance.db")
    migrate(engine)
    clock = Clock()
    memo = ActiveGenerationMemo(max_age_s=1.0, clock=clock)
    with engine.connect() as conn:
        first = memo.get(conn)
        assert first == active_generation(conn)
        statements: list[str] = []
        sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
        assert memo.get(conn) == first and statements == []  # kept: no statement
    with engine.begin() as conn:
        _switch_elsewhere(conn, first + 1)
    with engine.connect() as conn:
        clock.now += 0.5
        assert memo.get(conn) == first  # within its age: the retired generation, whole, still answers
        clock.now += 0.6
        assert memo.get(conn) == first + 1
    engine.dispose()


def test_a_switch_in_this_process_is_seen_at_the_next_read(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/balance.db")
    migrate(engine)
    memo = ActiveGenerationMemo(max_age_s=3600.0, clock=Clock())
    with engine.connect() as conn:
        first = memo.get(conn)
    with engine.begin() as conn:
        new = start_building(conn)
        switch_to(conn, new)
    with engine.connect() as conn:
        assert memo.get(conn) == new != first
    engine.dispose()
