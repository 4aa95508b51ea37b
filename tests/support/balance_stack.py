"""The balance service wired in-process for integration tests: the real BalanceService (consumer,
sweep, outbox) in threads and its read API through Flask's test client."""

from __future__ import annotations

import threading
from datetime import date
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from reciprocity.balance import tables as t
from reciprocity.balance.app import SOURCE_TOPICS, BalanceService, create_app
from reciprocity.balance.generations import active_generation
from reciprocity.balance.settings import BalanceSettings
from reciprocity.contracts.topics import all_topics
from reciprocity.messaging.inspect import end_offsets
from reciprocity.messaging.topics_admin import ensure_topics

from tests.support.auth import authorized

from .services import wait_for


def make_topics(bootstrap: str, prefix: str) -> None:
    ensure_topics(bootstrap, all_topics(prefix))


def stored_offsets(engine: sa.Engine) -> dict[tuple[str, int], int]:
    with engine.connect() as conn:
        gen = active_generation(conn)
        return {(r.topic, r.partition): r.next_offset
                for r in conn.execute(sa.select(t.offsets).where(t.offsets.c.generation == gen))}


def caught_up(engine: sa.Engine, bootstrap: str, prefix: str) -> bool:
    stored = stored_offsets(engine)
    ends = end_offsets(bootstrap, SOURCE_TOPICS, topic_prefix=prefix)
    return all(stored.get(key, 0) >= end for key, end in ends.items())


class InProcessBalance:
    def __init__(self, bootstrap: str, prefix: str, database_url: str, *, today: date | None = None,
                 sweep_interval_s: float = 3600.0) -> None:
        self.bootstrap, self.prefix = bootstrap, prefix
        self.settings = BalanceSettings(kafka_bootstrap_servers=bootstrap, topic_prefix=prefix,
                                        database_url=database_url, balance_today=today,
                                        balance_sweep_interval_s=sweep_interval_s)
        self.service = BalanceService(self.settings)
        self.app = create_app(self.settings, consumer_health=self.service.consumer.health)
        self.client = authorized(self.app.test_client(), self.settings.balance_token)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def engine(self) -> sa.Engine:
        return self.service.engine

    def __enter__(self) -> InProcessBalance:
        for name, fn in (("consume", self.service.consume), ("sweep", self.service.sweep)):
            thread = threading.Thread(target=fn, args=(self._stop,), name=f"test-balance-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        wait_for(lambda: self.service.consumer.health.connected, 60, what="balance consumer connected")
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self.service.event_log.close()
        self.service.engine.dispose()

    def wait_caught_up(self, timeout_s: float = 60) -> None:
        wait_for(lambda: caught_up(self.engine, self.bootstrap, self.prefix), timeout_s, what="projection caught up")

    def get(self, path: str, status: int = 200) -> Any:
        answer = self.client.get(path)
        assert answer.status_code == status, (path, answer.status_code, answer.get_data(as_text=True))
        return answer.get_json()
