"""The one place that wires balance's roles:

- the read API (any number of server processes; it only reads the read models),
- `projector`: the consumer of ledger.* that applies batches to the read models, evaluates the members
  a batch touched once their numbers settle, and publishes the signals it decided. Several projector
  processes share the partitions through their consumer group.
- `sweep`: the scheduled evaluation of every member (disconnection comes with time alone) and the
  retry of signals still in the outbox. One is enough; a second one only repeats decisions whose
  event ids are deterministic.

The migrations run once before any of them (`serve_api`/`run_worker` call `migrate`, under a lock on
PostgreSQL).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial

import sqlalchemy as sa
from reciprocity.common.sealing import projection_opener
from reciprocity.common.service import ApiProcess, ServiceRoles, WorkerRole
from reciprocity.contracts.envelope import ContractError, Envelope, decode
from reciprocity.contracts.events import Event
from reciprocity.contracts.topics import BALANCE_READS, SIGNALS, all_topics
from reciprocity.messaging.consumer import CatchUp, ProjectionConsumer
from reciprocity.messaging.event_log import BrokerUnavailable, EventLog
from reciprocity.messaging.inspect import end_offsets, read_all
from reciprocity.messaging.topics_admin import ensure_topics

from . import tables as t
from .app import create_app, database_problem
from .db import make_engine
from .db import migrate as migrate_schema
from .generations import active_generation
from .projection import BalanceProjection
from .projector import decode_for_projection
from .settings import BalanceSettings
from .signals import OutboxPublisher, SignalEngine, restore_from_log

log = logging.getLogger(__name__)


def catch_up(settings: BalanceSettings) -> CatchUp | None:
    """Transactions spanning polls while far behind, as configured (None: a transaction per poll).

    On PostgreSQL too, since a held transaction writes the circles' counters once at its commit
    (projection._Held): `python -m bench --events 500000 --skip sqlite ...`, 2026-12-02, two pairs on a
    loaded machine, held against a poll per transaction: 0.156x and 0.160x the read-only floor against
    0.117x and 0.105x. Before that change it was the other way round (8,418-9,153 events/s held against
    12,903-13,360, 300,000 events)."""
    if settings.balance_catch_up_events <= settings.balance_max_poll_records:
        return None
    return CatchUp(settings.balance_catch_up_events, settings.balance_catch_up_s)


class BalanceService:
    """The worker side wired: the projection, the consumer, the signal engine and the outbox publisher."""

    def __init__(self, settings: BalanceSettings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        migrate_schema(self.engine)
        self.event_log = EventLog(settings.kafka_bootstrap_servers, client_id="balance",
                                  topic_prefix=settings.topic_prefix)
        self.signals = SignalEngine(clock=settings.today, settle_s=settings.balance_signal_settle_s,
                                    max_defer_s=settings.balance_signal_max_defer_s)
        self.publisher = OutboxPublisher(self.engine, self.event_log)
        self.projection = BalanceProjection(self.engine, signals=self.signals, after_commit=self.publish,
                                            opener=projection_opener(settings))
        self.consumer = ProjectionConsumer(
            settings.kafka_bootstrap_servers,
            group_id=settings.balance_consumer_group,
            topics=list(BALANCE_READS),
            projection=self.projection,
            dead_letters=self.event_log,
            topic_prefix=settings.topic_prefix,
            client_id="balance",
            max_records=settings.balance_max_poll_records,
            catch_up=catch_up(settings),
            decoder=decode_for_projection,
        )

    def publish(self) -> None:
        if self.settings.balance_publish_signals:
            self.publisher.publish()

    def prepare(self, stop: threading.Event) -> bool:
        """Topics exist, signal state known, catch-up target set; retried until Kafka answers."""
        s = self.settings
        while not stop.is_set():
            try:
                ensure_topics(s.kafka_bootstrap_servers, all_topics(s.topic_prefix), timeout_s=10)
                self._restore_signals()
                targets = end_offsets(s.kafka_bootstrap_servers, BALANCE_READS, topic_prefix=s.topic_prefix)
                self.signals.hold_until(targets)
                with self.engine.begin() as conn:
                    if self.signals.reached_targets(conn, active_generation(conn)):
                        self.signals.caught_up = True
                return True
            except Exception as err:
                log.warning("waiting for Kafka before consuming: %r", err)
                stop.wait(2.0)
        return False

    def _restore_signals(self) -> None:
        with self.engine.connect() as conn:
            known = conn.execute(sa.select(sa.func.count()).select_from(t.signal_state)).scalar()
        if known:
            return
        s = self.settings

        def decoded() -> Iterator[tuple[Envelope, Event]]:
            for record in read_all(s.kafka_bootstrap_servers, [SIGNALS.name], topic_prefix=s.topic_prefix):
                try:
                    yield decode(record.value)
                except ContractError as err:
                    log.warning("unreadable signal at %s[%d]@%d: %s", record.topic, record.partition,
                                record.offset, err)

        restored = restore_from_log(self.engine, decoded())
        if restored:
            log.info("restored signal state from %d events of %s", restored, SIGNALS.name)

    def consume(self, stop: threading.Event) -> None:
        if self.prepare(stop):
            self.consumer.run(stop)

    def sweep(self, stop: threading.Event, *, on_settle: bool = True, on_schedule: bool = True) -> None:
        """Evaluate members whose numbers settled (`on_settle`: the projector's process, where the
        batches that touched them were applied), every member now and then (`on_schedule`: disconnection
        comes with time; the first sweep soon after start also covers what a crash left unevaluated),
        and retry the outbox."""
        interval = self.settings.balance_sweep_interval_s
        tick = min(interval, max(self.settings.balance_signal_settle_s / 4, 0.25), 5.0)
        next_sweep = time.monotonic() + min(interval, 5.0)
        while not stop.wait(tick):
            settled: set[str] = set()
            try:
                if on_schedule and time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + interval
                    with self.engine.begin() as conn:
                        self.signals.sweep(conn, active_generation(conn))
                elif on_settle and (settled := self.signals.take_settled()):
                    with self.engine.begin() as conn:
                        self.signals.evaluate(conn, active_generation(conn), settled)
                    settled = set()
                self.publish()
            except BrokerUnavailable as err:
                log.warning("signals stay in the outbox: %s", err)
            except Exception:
                log.exception("sweep failed")
                self.signals.give_back(settled)


def bootstrap(settings: BalanceSettings | None = None) -> ServiceRoles:
    settings = settings or BalanceSettings()

    def api() -> ApiProcess:
        engine = make_engine(settings.database_url, immediate=False)
        return ApiProcess(create_app(settings, engine=engine), close=engine.dispose)

    def migrate() -> None:
        engine = make_engine(settings.database_url)
        try:
            migrate_schema(engine)
        finally:
            engine.dispose()

    def projector() -> WorkerRole:
        service = BalanceService(settings)

        def health() -> dict[str, str | None]:
            return {"database": database_problem(service.engine), "kafka": service.consumer.health.reason()}

        return WorkerRole(
            threads=[("balance-consumer", service.consume),
                     ("balance-signals", partial(service.sweep, on_schedule=False))],
            health=health, details=lambda: {"consumer": service.consumer.health.summary()},
            close=_closer(service), parts=service)

    def sweep() -> WorkerRole:
        service = BalanceService(settings)

        def run(stop: threading.Event) -> None:
            # Knows where the log ended at start, so the first sweep waits for the projectors to get there.
            if service.prepare(stop):
                service.sweep(stop, on_settle=False)

        def health() -> dict[str, str | None]:
            kafka = None if service.event_log.ping(SIGNALS.name) else (
                f"Kafka at {settings.kafka_bootstrap_servers} does not answer (signals stay in the outbox)")
            return {"database": database_problem(service.engine), "kafka": kafka}

        return WorkerRole(threads=[("balance-sweep", run)], health=health, close=_closer(service), parts=service)

    return ServiceRoles("balance", api=api, migrate=migrate, workers={"projector": projector, "sweep": sweep})


def _closer(service: BalanceService) -> Callable[[], None]:
    def close() -> None:
        service.event_log.close()
        service.engine.dispose()

    return close
