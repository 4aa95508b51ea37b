"""(b) and (b2) of `make bench`: the real balance consumer and projection, timed.

In a module of its own so that (b2)'s processes, started fresh ("spawn"), can import what they run.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import NamedTuple

from reciprocity.contracts.topics import DIRECTORY, EXCHANGES
from reciprocity.messaging.consumer import ProjectionConsumer
from reciprocity.messaging.event_log import EventLog
from rich.console import Console


class TimedProjection:
    """Passes through to the real projection, noting (by `clock`) when the first batch of events began
    and the last ended; the loop's empty spans (commit markers, idle confirmations) do not count."""

    def __init__(self, inner, target: int, clock=time.perf_counter) -> None:  # type: ignore[no-untyped-def]
        self.inner = inner
        self.target = target
        self.clock = clock
        self.applied = 0
        self.first: float | None = None
        self.last: float | None = None
        # The process's CPU time over the same span: on a shared machine, what the projection costs
        # whatever the neighbours take from the wall clock (PostgreSQL's own work is in its server).
        self.cpu_first: float | None = None
        self.cpu_last: float | None = None
        self.batches = 0
        self.done = threading.Event()
        self.held = 0  # events of the exchanges topic in the open transaction spanning polls

    def _started(self, began: float, cpu_began: float) -> None:
        self.first = self.first or began
        self.cpu_first = self.cpu_first if self.cpu_first is not None else cpu_began

    def _ended(self, applied: int) -> None:
        self.last, self.cpu_last = self.clock(), time.process_time()
        self.batches += 1
        self.applied += applied
        if self.applied >= self.target:
            self.done.set()

    def load_offsets(self, partitions):  # type: ignore[no-untyped-def]
        return self.inner.load_offsets(partitions)

    def apply(self, events, offsets) -> None:  # type: ignore[no-untyped-def]
        began, cpu_began = self.clock(), time.process_time()
        self.inner.apply(events, offsets)
        if not events:
            return
        self._started(began, cpu_began)
        self._ended(sum(1 for e in events if e.topic == EXCHANGES.name))

    # A transaction spanning polls (messaging.consumer.CatchUp): timed to its commit.
    def hold(self, events, offsets) -> None:  # type: ignore[no-untyped-def]
        began, cpu_began = self.clock(), time.process_time()
        self.inner.hold(events, offsets)
        if events:
            self._started(began, cpu_began)
            self.held += sum(1 for e in events if e.topic == EXCHANGES.name)

    def commit(self, *, caught_up: bool = True) -> None:
        self.inner.commit(caught_up=caught_up)
        held, self.held = self.held, 0
        if held:
            self._ended(held)

    def rollback(self) -> None:
        self.inner.rollback()
        self.held = 0


@contextmanager
def balance_consumer(bootstrap: str, prefix: str, database_url: str, label: str, target: int,
                     clock=time.perf_counter,  # type: ignore[no-untyped-def]
                     opener=None) -> Iterator[tuple[ProjectionConsumer, TimedProjection, threading.Thread]]:
    """The real ProjectionConsumer + BalanceProjection, wired as the service wires them (policy held until
    caught up, outbox published), consuming in a thread until the block ends."""
    from reciprocity.balance.bootstrap import catch_up
    from reciprocity.balance.db import make_engine, migrate
    from reciprocity.balance.projection import BalanceProjection
    from reciprocity.balance.projector import decode_for_projection
    from reciprocity.balance.settings import BalanceSettings
    from reciprocity.balance.signals import OutboxPublisher, SignalEngine
    from reciprocity.messaging.consumer import ProjectionConsumer
    from reciprocity.messaging.inspect import end_offsets

    settings = BalanceSettings()
    engine = make_engine(database_url)
    migrate(engine)
    signals = SignalEngine(clock=lambda: datetime.now(UTC).date())
    signals.hold_until(end_offsets(bootstrap, [DIRECTORY.name, EXCHANGES.name], topic_prefix=prefix))
    log = EventLog(bootstrap, client_id="bench-balance", topic_prefix=prefix)
    publisher = OutboxPublisher(engine, log)
    timed = TimedProjection(BalanceProjection(engine, signals=signals, after_commit=publisher.publish, opener=opener),
                            target, clock)
    consumer = ProjectionConsumer(bootstrap, group_id=f"bench-{label}", topics=[DIRECTORY.name, EXCHANGES.name],
                                  projection=timed, dead_letters=log, topic_prefix=prefix, client_id="bench",
                                  max_records=settings.balance_max_poll_records, catch_up=catch_up(settings),
                                  decoder=decode_for_projection)
    stop = threading.Event()
    worker = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    worker.start()
    try:
        yield consumer, timed, worker
    finally:
        stop.set()
        worker.join(timeout=30)
        log.close()
        engine.dispose()


class ProjectionRun(NamedTuple):
    rate: float  # events/s, wall clock
    batches: int
    cpu_us: float  # CPU time of the balance process per event


def project(bootstrap: str, prefix: str, database_url: str, n_expected: int, label: str,
            opener=None) -> ProjectionRun:  # type: ignore[no-untyped-def]
    with balance_consumer(bootstrap, prefix, database_url, label, n_expected, opener=opener) as (
            consumer, timed, worker):
        last_report = time.monotonic()
        while not timed.done.wait(1.0):
            if not worker.is_alive():
                raise RuntimeError("consumer stopped")
            if consumer.health.failed_partitions:
                raise RuntimeError(f"projection failed: {consumer.health.reason()}")
            if time.monotonic() - last_report > 10:
                Console().print(f"  {label}: {timed.applied:,}/{n_expected:,}", end="\r")
                last_report = time.monotonic()
    assert timed.first is not None and timed.last is not None
    assert timed.cpu_first is not None and timed.cpu_last is not None
    return ProjectionRun(n_expected / (timed.last - timed.first), timed.batches,
                         (timed.cpu_last - timed.cpu_first) / n_expected * 1e6)


# --- (b2) several processes in one group ---------------------------------------------------------


def group_member(bootstrap: str, prefix: str, database_url: str, label: str, stop, report) -> None:  # type: ignore[no-untyped-def]
    """One process of (b2): consume until `stop`, then report (first, last, events applied), wall clock."""
    with balance_consumer(bootstrap, prefix, database_url, label, sys.maxsize, clock=time.time) as (consumer, timed, _):
        while not stop.wait(0.5):
            if consumer.health.failed_partitions:
                report.put(RuntimeError(f"projection failed: {consumer.health.reason()}"))
                return
    report.put((timed.first, timed.last, timed.applied))


def project_by_group(bootstrap: str, prefix: str, database_url: str, n_expected: int, label: str,
                     processes: int = 2) -> float:
    """(b2): `processes` balance processes in one consumer group share the partitions and one database,
    as the service scales out; timed from the first batch any of them applies to the last."""
    import multiprocessing

    from reciprocity.balance.db import make_engine, migrate

    engine = make_engine(database_url)
    migrate(engine)  # once, before the members start
    spawn = multiprocessing.get_context("spawn")  # fresh interpreters: no client threads inherited
    stop, report = spawn.Event(), spawn.Queue()
    members = [spawn.Process(target=group_member, args=(bootstrap, prefix, database_url, label, stop, report),
                             daemon=True) for _ in range(processes)]
    for member in members:
        member.start()
    try:
        deadline = time.monotonic() + 900
        while _exchanges_applied(engine) < n_expected:
            if time.monotonic() > deadline or not all(m.is_alive() for m in members):
                raise RuntimeError(f"{label}: the group stopped short of {n_expected:,} events")
            time.sleep(1.0)
    finally:
        stop.set()
        results = []
        for _ in members:
            try:
                results.append(report.get(timeout=60))
            except queue.Empty:
                break
        for member in members:
            member.join(timeout=30)
        engine.dispose()
    if len(results) < len(members):
        raise RuntimeError(f"{label}: a group member ended without reporting (see its output above)")
    failed = [r for r in results if isinstance(r, Exception)]
    if failed:
        raise failed[0]
    spans = [(first, last) for first, last, applied in results if applied]
    return n_expected / (max(last for _, last in spans) - min(first for first, _ in spans))


def _exchanges_applied(engine) -> int:  # type: ignore[no-untyped-def]
    """Records of the exchanges topic applied so far (its stored offsets; the bench's loads leave no
    commit markers, so this is the number of events)."""
    import sqlalchemy as sa
    from reciprocity.balance import tables as t
    from reciprocity.balance.generations import active_generation

    o = t.offsets.c
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(o.next_offset), 0)).where(
            o.generation == active_generation(conn), o.topic == EXCHANGES.name)).scalar_one())


