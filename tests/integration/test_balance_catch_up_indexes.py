"""A catch-up into a store without exchanges builds the side indexes of the exchanges at its end
(projection.BalanceProjection, SQLite): they are absent only while it runs, come back as a migrated store
has them whichever way it ends, and the read model is the one a poll-by-poll projection builds."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from reciprocity.balance.db import SQLITE as BALANCE_SQLITE
from reciprocity.balance.db import make_engine, migrate
from reciprocity.balance.projection import BalanceProjection
from reciprocity.balance.tables import EXCHANGE_SIDE_INDEXES
from reciprocity.contracts.envelope import Envelope
from reciprocity.contracts.events import Event
from reciprocity.contracts.topics import EXCHANGES

from tests.support.events import Exchange, Feeder, circle, envelope, member, offset_ranges
from tests.support.services import wait_for

SIDE_INDEXES = tuple(index.name for index in EXCHANGE_SIDE_INDEXES)
MEMBERS = [f"m{i}" for i in range(12)]


def side_indexes(engine: sa.Engine) -> dict[str, str]:
    """The side indexes as the store holds them (committed), by name: their CREATE statements."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'index'")).all()
    return {name: sql for name, sql in rows if name in SIDE_INDEXES}


def read_model(engine: sa.Engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {table: conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY 1, 2, 3")).all()
                for table in ("balance_exchanges", "balance_circle_day", "balance_offsets")}


Wrapped = tuple[Envelope, Event]


def wrapped(events: list[Event]) -> list[Wrapped]:
    return [(envelope(e), e) for e in events]


def exchanges(n: int) -> list[Wrapped]:
    """`n` recordings, built once (a test applying them twice applies the same events, times and ids)."""
    today = date.today()
    return wrapped([Exchange(MEMBERS[i % len(MEMBERS)], MEMBERS[(i * 7 + 1) % len(MEMBERS)], 5 + i % 50,
                     today - timedelta(days=i % 90), "help" if i % 3 else "care",
                     giver_circles=["core"], receiver_circles=["core"]).recorded()
                    for i in range(n)])


DIRECTORY = wrapped([circle("core"), *(member(m, ["core"]) for m in MEMBERS)])


def store(tmp_path: Path, name: str) -> tuple[sa.Engine, BalanceProjection, Feeder]:
    engine = make_engine(f"sqlite:///{tmp_path / name}.db")
    migrate(engine)
    projection = BalanceProjection(engine)
    feeder = Feeder(projection, partition=0)
    feeder.feed(DIRECTORY)
    projection.load_offsets([(EXCHANGES.name, 0)])  # as the consumer seeks before it holds
    return engine, projection, feeder


def hold(projection: BalanceProjection, feeder: Feeder, poll: list[Wrapped]) -> None:
    records = feeder.append(poll)
    projection.hold(records, offset_ranges(records))


@pytest.fixture
def migrated(tmp_path: Path) -> dict[str, str]:
    engine = make_engine(f"sqlite:///{tmp_path / 'migrated'}.db")
    migrate(engine)
    indexes = side_indexes(engine)
    engine.dispose()
    assert set(indexes) == set(SIDE_INDEXES)
    return indexes


def test_a_catch_up_into_a_store_without_exchanges_builds_the_side_indexes_at_its_end(
        tmp_path: Path, migrated: dict[str, str]) -> None:
    polls = [exchanges(600)[i:i + 40] for i in range(0, 600, 40)]
    engine, projection, feeder = store(tmp_path, "caught-up")
    for i, poll in enumerate(polls[:-1]):
        hold(projection, feeder, poll)
        if i % 4 == 3:  # a size bound, still far behind: the next transaction goes on without them
            projection.commit(caught_up=False)
            assert side_indexes(engine) == {}
    hold(projection, feeder, polls[-1])
    projection.commit()  # near the end of the log
    assert side_indexes(engine) == migrated

    reference_engine, _, reference_feeder = store(tmp_path, "poll-by-poll")
    for poll in polls:
        reference_feeder.feed(poll)
    assert side_indexes(reference_engine) == migrated
    assert read_model(engine) == read_model(reference_engine)
    assert len(read_model(engine)["balance_exchanges"]) == 600
    engine.dispose()
    reference_engine.dispose()


def test_a_store_holding_exchanges_keeps_its_side_indexes(tmp_path: Path, migrated: dict[str, str]) -> None:
    engine, projection, feeder = store(tmp_path, "with-rows")
    feeder.feed(exchanges(1))
    for i in range(3):
        hold(projection, feeder, exchanges(40 * (i + 2))[40 * (i + 1):])
        projection.commit(caught_up=False)  # what it dropped would stay dropped
        assert side_indexes(engine) == migrated
    engine.dispose()


@pytest.mark.parametrize("dropped_in", ["the failing transaction", "an earlier committed one"])
def test_a_catch_up_that_fails_leaves_the_side_indexes_in_place(
        tmp_path: Path, migrated: dict[str, str], dropped_in: str) -> None:
    engine, projection, feeder = store(tmp_path, "failing")
    first, *rest = exchanges(81)
    hold(projection, feeder, [first, *rest[:40]])
    if dropped_in == "an earlier committed one":
        projection.commit(caught_up=False)
        assert side_indexes(engine) == {}
        hold(projection, feeder, rest[40:])
    hold(projection, feeder, [first])  # a recording repeated, written while the next poll is fetched:
    with pytest.raises(sa.exc.IntegrityError):  # it fails what comes next, and the whole transaction goes
        projection.commit()
    assert side_indexes(engine) == migrated
    engine.dispose()


def test_a_catch_up_stopped_between_its_transactions_puts_the_side_indexes_back(
        tmp_path: Path, migrated: dict[str, str]) -> None:
    engine, projection, feeder = store(tmp_path, "stopped")
    hold(projection, feeder, exchanges(40))
    projection.commit(caught_up=False)
    assert side_indexes(engine) == {}
    projection.rollback()  # the consumer stops (nothing open)
    assert side_indexes(engine) == migrated
    engine.dispose()


def test_the_start_up_builds_side_indexes_a_crash_left_missing(tmp_path: Path, migrated: dict[str, str]) -> None:
    engine, projection, feeder = store(tmp_path, "crashed")
    hold(projection, feeder, exchanges(40))
    projection.commit(caught_up=False)  # then the process dies
    assert side_indexes(engine) == {}
    engine.dispose()
    restarted = make_engine(f"sqlite:///{tmp_path / 'crashed'}.db")
    migrate(restarted)
    assert side_indexes(restarted) == migrated
    migrate(restarted)  # again: nothing to do
    assert side_indexes(restarted) == migrated
    restarted.dispose()


def test_a_held_commit_is_checkpointed_by_a_thread_of_its_own_and_lends_its_connection_back_as_it_was(
        tmp_path: Path) -> None:
    """The commit does not copy the WAL into the database file itself: the checkpoint thread does, after it."""
    engine, projection, feeder = store(tmp_path, "checkpointed")
    database = tmp_path / "checkpointed.db"
    hold(projection, feeder, exchanges(200))
    assert projection._held is not None
    lent = projection._held.conn.connection.driver_connection
    assert lent is not None and lent.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
    before = database.stat().st_size
    projection.commit()
    assert lent.execute("PRAGMA wal_autocheckpoint").fetchone() == (BALANCE_SQLITE.checkpoint_pages,)
    wait_for(lambda: database.stat().st_size > before, timeout_s=30, what="the WAL copied into the database file")
    assert len(read_model(engine)["balance_exchanges"]) == 200
    engine.dispose()
