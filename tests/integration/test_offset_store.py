"""One test case for the offset store (reciprocity.messaging.tracking), run against every table that keeps
a projection's positions (balance_offsets, per generation; notify_offsets), on SQLite and PostgreSQL:
what the compare-and-set accepts and refuses is the same everywhere."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from reciprocity.balance import tables as balance_tables
from reciprocity.balance.db import make_engine as balance_engine
from reciprocity.balance.db import migrate as balance_migrate
from reciprocity.common.db import make_engine
from reciprocity.messaging.tracking import OffsetRange, OffsetStore, Position, StaleBatch
from reciprocity.notify import store as notify_store

from tests.support.services import wait_for


@dataclass
class Tracked:
    """One projection's offset table in a fresh database, with the scope its rows carry."""

    engine: sa.Engine
    store: OffsetStore
    scope: dict[str, Any]
    other_scope: dict[str, Any] | None  # a second scope whose rows must stay apart (balance: a replay's)

    def stored(self, **scope: Any) -> dict[tuple[str, int], int]:
        with self.engine.connect() as conn:
            return self.store.next_offsets(conn, **(scope or self.scope))

    def advance(self, spans: dict[tuple[str, int], OffsetRange], **kwargs: Any) -> None:
        with self.engine.begin() as conn:
            self.store.advance(conn, spans, **{**self.scope, **kwargs})


@pytest.fixture(params=["balance", "notify"])
def tracked(request: pytest.FixtureRequest, db_url: str) -> Iterator[Tracked]:
    if request.param == "balance":
        engine = balance_engine(db_url)
        balance_migrate(engine)
        yield Tracked(engine, balance_tables.positions, {"generation": 1}, {"generation": 2})
    else:
        engine = make_engine(db_url)
        notify_store.migrate(engine)
        yield Tracked(engine, notify_store.positions, {}, None)
    engine.dispose()


A, B = ("ledger.exchanges", 0), ("ledger.directory", 1)


def test_a_first_batch_stores_its_position_and_the_next_continues_exactly_from_it(tracked: Tracked) -> None:
    assert tracked.stored() == {}
    tracked.advance({A: OffsetRange(first=0, next=3)})
    # A log whose start was deleted by retention: the first batch of a partition begins past offset 0.
    tracked.advance({B: OffsetRange(first=40, next=41)})
    tracked.advance({A: OffsetRange(first=3, next=7), B: OffsetRange(first=41, next=45)})
    assert tracked.stored() == {A: 7, B: 45}
    with tracked.engine.connect() as conn:
        assert tracked.store.load(conn, [A, ("ledger.exchanges", 9)], **tracked.scope) == {A: 7}


def test_the_last_event_time_is_kept_where_the_table_has_it(tracked: Tracked) -> None:
    at = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    tracked.advance({A: OffsetRange(0, 2)}, latest={A: at})
    with tracked.engine.connect() as conn:
        (position,) = tracked.store.read(conn, **tracked.scope).values()
    assert position.next_offset == 2
    if tracked.store.timed:
        assert position.last_event_at is not None
        assert position.last_event_at.replace(tzinfo=position.last_event_at.tzinfo or UTC) == at
    else:
        assert position == Position(2, None)


@pytest.mark.parametrize("first", [0, 2, 4, 6], ids=["repeat-from-start", "repeat-overlapping", "gap", "rewound"])
def test_a_batch_that_does_not_start_at_the_stored_offset_is_stale_and_changes_nothing(
        tracked: Tracked, first: int) -> None:
    """A repeat (polled again after a crash, a retried batch) starts below the stored offset; a batch past
    it would skip records the store has not seen (a rewound store, another consumer's view)."""
    tracked.advance({A: OffsetRange(0, 4)})
    if first == 6:  # the store was rewound to 2 behind this consumer's back (an operator's rewind)
        with tracked.engine.begin() as conn:
            tracked.store.forget(conn, [A[0]], **tracked.scope)
        tracked.advance({A: OffsetRange(0, 2)})
    before = tracked.stored()
    if first == before[A]:
        first += 1  # a gap of one past the stored offset
    with pytest.raises(StaleBatch, match=r"ledger\.exchanges\[0\].* is stored at"):
        tracked.advance({A: OffsetRange(first, 9)})
    assert tracked.stored() == before


def test_a_stale_partition_rolls_back_the_whole_batch_with_the_others(tracked: Tracked) -> None:
    tracked.advance({A: OffsetRange(0, 2), B: OffsetRange(0, 5)})
    with pytest.raises(StaleBatch), tracked.engine.begin() as conn:
        # A is fine, B repeats: the projection's transaction (rows and offsets) is rolled back as one.
        tracked.store.advance(conn, {A: OffsetRange(2, 4), B: OffsetRange(3, 6)}, **tracked.scope)
    assert tracked.stored() == {A: 2, B: 5}


@pytest.mark.parametrize("stored_before", [None, 3], ids=["first-position", "moving-position"])
def test_two_owners_after_a_rebalance_the_second_finds_the_offset_moved(tracked: Tracked,
                                                                        stored_before: int | None) -> None:
    """After a rebalance two processes may apply the same span at once. The second waits for the first's
    row lock, or its unique key for a first position (PostgreSQL), or the write lock (SQLite), then
    finds the offset moved (or the row stored) and applies nothing."""
    start = stored_before or 0
    if stored_before is not None:
        tracked.advance({A: OffsetRange(0, stored_before)})
    outcome: list[BaseException | None] = []

    def second() -> None:
        try:
            tracked.advance({A: OffsetRange(start, start + 3)})
            outcome.append(None)
        except BaseException as err:
            outcome.append(err)

    thread = threading.Thread(target=second)
    with tracked.engine.begin() as first:
        tracked.store.advance(first, {A: OffsetRange(start, start + 5)}, **tracked.scope)
        thread.start()
        if tracked.engine.dialect.name == "postgresql":  # the second's statement waits for the first's lock
            wait_for(lambda: _waiting_for_a_lock(tracked.engine), 10, what="the second owner waiting for the lock")
    thread.join(timeout=30)
    assert len(outcome) == 1 and isinstance(outcome[0], StaleBatch), outcome
    assert tracked.stored() == {A: start + 5}


def _waiting_for_a_lock(engine: sa.Engine) -> int:
    with engine.connect() as look:  # a new transaction each time: pg_stat_activity is a per-transaction snapshot
        return int(look.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                        "AND datname = current_database()")).scalar_one())


def test_a_parked_event_moves_the_offset_in_contiguous_pieces(tracked: Tracked) -> None:
    """apply_isolating_poison applies a failing batch in halves; each piece starts where the last stopped,
    and the parked event's own piece (no rows) moves the offset past it."""
    tracked.advance({A: OffsetRange(0, 10)})
    for piece in (OffsetRange(10, 15), OffsetRange(15, 16), OffsetRange(16, 20)):
        tracked.advance({A: piece})
    assert tracked.stored() == {A: 20}


def test_scopes_keep_their_own_positions_and_forget_drops_only_what_is_asked(tracked: Tracked) -> None:
    tracked.advance({A: OffsetRange(0, 4), B: OffsetRange(0, 2)})
    if tracked.other_scope is not None:  # a replay's generation starts from nothing, beside the active one
        assert tracked.stored(**tracked.other_scope) == {}
        with tracked.engine.begin() as conn:
            tracked.store.advance(conn, {A: OffsetRange(0, 9)}, **tracked.other_scope)
        assert tracked.stored(**tracked.other_scope) == {A: 9}
    assert tracked.stored() == {A: 4, B: 2}
    with tracked.engine.begin() as conn:
        assert tracked.store.forget(conn, [B[0]], **tracked.scope) == 1
    assert tracked.stored() == {A: 4}
    if tracked.other_scope is not None:
        assert tracked.stored(**tracked.other_scope) == {A: 9}
    tracked.advance({B: OffsetRange(0, 1)})  # forgotten: the partition starts over from the beginning
    assert tracked.stored() == {A: 4, B: 1}


def test_a_table_without_the_offset_columns_is_refused() -> None:
    table = sa.Table("not_offsets", sa.MetaData(), sa.Column("topic", sa.String), sa.Column("offset", sa.Integer))
    with pytest.raises(ValueError, match="no partition column"):
        OffsetStore(table)
