"""The one place that wires notify together: database, projection, consumer, sender; and its roles
(`bootstrap()`): the read API over the delivery log, and the `sender` worker (the consumer of
balance.signals and ledger.directory with the sender beside it: the projection wakes the sender in
memory when it plans a delivery). Run one sender; a second one would only wait on the leases."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

import sqlalchemy as sa
from reciprocity.common.db import make_engine, reading
from reciprocity.common.sealing import projection_opener
from reciprocity.common.service import ApiProcess, ServiceRoles, Worker, WorkerRole
from reciprocity.contracts.topics import NOTIFY_READS, SIGNALS, all_topics
from reciprocity.messaging.consumer import PartitionKey, ProjectionConsumer
from reciprocity.messaging.event_log import EventLog
from reciprocity.messaging.inspect import end_offsets
from reciprocity.messaging.topics_admin import ensure_topics
from sqlalchemy.engine import Engine

from . import store
from .digest import plan_digests
from .projection import CrashHook, NotifyProjection
from .sender import Sender, SmtpConfig, SmtpTransport
from .settings import NotifySettings

log = logging.getLogger(__name__)

GROUP_ID = "notify"


class Notifier:
    def __init__(self, settings: NotifySettings, *, crash_hook: CrashHook | None = None) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        store.migrate(self.engine)
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        self.transport = SmtpTransport(SmtpConfig(
            host=settings.smtp_host, port=settings.smtp_port, user=settings.smtp_user, password=password,
            starttls=settings.smtp_starttls, ssl=settings.smtp_ssl, sender=settings.smtp_from,
            timeout_s=settings.smtp_timeout_s, ca_file=settings.smtp_ca_file,
        ))
        self.sender = Sender(
            self.engine, self.transport,
            retry_initial_s=settings.notify_retry_initial_s, retry_max_s=settings.notify_retry_max_s,
            lease_s=settings.notify_send_lease_s, poll_s=settings.notify_poll_s, crash_hook=crash_hook,
            housekeeping=self._housekeeping,
        )
        self.projection = NotifyProjection(
            self.engine, web_base_url=settings.web_base_url, rate_limit_days=settings.notify_rate_limit_days,
            on_planned=self.sender.wake, crash_hook=crash_hook, opener=projection_opener(settings),
        )
        self.dead_letters = EventLog(settings.kafka_bootstrap_servers, client_id="notify-dlq",
                                     topic_prefix=settings.topic_prefix)
        self.consumer = ProjectionConsumer(
            settings.kafka_bootstrap_servers, group_id=GROUP_ID, topics=list(NOTIFY_READS), projection=self.projection,
            dead_letters=self.dead_letters, topic_prefix=settings.topic_prefix, client_id="notify",
        )
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _housekeeping(self) -> None:
        self.projection.expire_waiting(self.settings.notify_directory_wait_s)
        now = datetime.now(UTC)
        if now.hour >= self.settings.notify_digest_hour:
            plan_digests(self.engine, now=now, web_base_url=self.settings.web_base_url, on_planned=self.sender.wake)

    def consume(self, stop: threading.Event) -> None:
        """Make sure the topics exist (idempotent; any service may start first), then consume."""
        while not stop.is_set():
            try:
                ensure_topics(self.settings.kafka_bootstrap_servers, all_topics(self.settings.topic_prefix),
                              timeout_s=5)
                if self.settings.notify_skip_history:
                    self.projection.history_until = history_to_skip(self.engine, self.settings)
                break
            except Exception as err:  # Kafka not up yet: /health says "not connected" meanwhile
                log.warning("cannot make sure the topics exist yet (%r); retrying", err)
                stop.wait(2.0)
        self.consumer.run(stop)

    def workers(self) -> list[tuple[str, Worker]]:
        return [("notify-consumer", self.consume), ("notify-sender", self.sender.run)]

    def health(self) -> dict[str, str | None]:
        database = database_problem(self.engine)
        return {
            "database": database,
            "kafka": self.consumer.health.reason(),
            "smtp": self.sender.health_reason() if database is None else None,
        }

    # In-process runs (tests, tools): the same workers `run_worker` starts in the sender process, in threads of our own.
    def start(self) -> Notifier:
        self._stop.clear()
        self._threads = [threading.Thread(target=fn, args=(self._stop,), name=name, daemon=True)
                         for name, fn in self.workers()]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.sender.wake()
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads = []

    def close(self) -> None:
        self.stop()
        self.dead_letters.close()
        self.engine.dispose()


def database_problem(engine: Engine) -> str | None:
    try:
        with reading(engine) as conn:
            conn.execute(sa.text("SELECT 1"))
        return None
    except Exception as err:
        return f"database unreachable: {err!r}"[:500]


def bootstrap(settings: NotifySettings | None = None) -> ServiceRoles:
    settings = settings or NotifySettings()

    def api() -> ApiProcess:
        from .app import create_app

        engine = make_engine(settings.database_url)
        return ApiProcess(create_app(settings, engine=engine), close=engine.dispose)

    def migrate() -> None:
        engine = make_engine(settings.database_url)
        try:
            store.migrate(engine)
        finally:
            engine.dispose()

    def sender() -> WorkerRole:
        notifier = Notifier(settings)

        def close() -> None:
            notifier.dead_letters.close()
            notifier.engine.dispose()

        return WorkerRole(threads=notifier.workers(), health=notifier.health, close=close, parts=notifier,
                          details=lambda: {"consumer": notifier.consumer.health.summary()})

    return ServiceRoles("notify", api=api, migrate=migrate, workers={"sender": sender})


def history_to_skip(engine: Engine, settings: NotifySettings) -> dict[PartitionKey, int]:
    """With NOTIFY_SKIP_HISTORY, on a delivery log that has consumed nothing of balance.signals yet: the
    end offsets of balance.signals now, below which signals are recorded but not mailed. Nothing once
    any offset of it is stored (a restart must not skip what arrived while notify was down)."""
    with engine.connect() as conn:
        started = any(topic == SIGNALS.name for topic, _ in store.positions.next_offsets(conn))
    if started:
        return {}
    ends = end_offsets(settings.kafka_bootstrap_servers, [SIGNALS.name], topic_prefix=settings.topic_prefix)
    log.warning("NOTIFY_SKIP_HISTORY: the %d alert record(s) already in %s are recorded, not mailed",
                sum(ends.values()), SIGNALS.name)
    return ends
