"""The balance service wired in-process for integration tests: its roles from bootstrap.py (projector,
sweep) in threads and its read API through Flask's test client."""

from __future__ import annotations

from datetime import date
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from reciprocity.balance import tables as t
from reciprocity.balance.app import create_app
from reciprocity.balance.bootstrap import BalanceService
from reciprocity.balance.bootstrap import bootstrap as balance_roles
from reciprocity.balance.generations import active_generation
from reciprocity.balance.settings import BalanceSettings
from reciprocity.common.service import Threads, WorkerRole
from reciprocity.contracts.topics import BALANCE_READS, all_topics
from reciprocity.messaging.inspect import end_offsets
from reciprocity.messaging.topics_admin import ensure_topics

from tests.support.auth import authorized

from .services import wait_for


def make_topics(bootstrap: str, prefix: str) -> None:
    ensure_topics(bootstrap, all_topics(prefix))


def stored_offsets(engine: sa.Engine) -> dict[tuple[str, int], int]:
    with engine.connect() as conn:
        gen = active_generation(conn)
        return t.positions.next_offsets(conn, generation=gen)


def caught_up(engine: sa.Engine, bootstrap: str, prefix: str) -> bool:
    stored = stored_offsets(engine)
    ends = end_offsets(bootstrap, BALANCE_READS, topic_prefix=prefix)
    return all(stored.get(key, 0) >= end for key, end in ends.items())


class InProcessBalance:
    """balance's roles as bootstrap.py wires them for production (the projector and the sweep, each with
    its own BalanceService), run in threads here; the read API through Flask's test client, with the
    projector's consumer health so /v1/projection/status can report it."""

    def __init__(self, bootstrap: str, prefix: str, database_url: str, *, today: date | None = None,
                 sweep_interval_s: float = 3600.0) -> None:
        self.bootstrap, self.prefix = bootstrap, prefix
        self.settings = BalanceSettings(kafka_bootstrap_servers=bootstrap, topic_prefix=prefix,
                                        database_url=database_url, balance_today=today,
                                        balance_sweep_interval_s=sweep_interval_s)
        roles = balance_roles(self.settings)
        roles.migrate()
        self.roles: list[WorkerRole] = [roles.workers["projector"](), roles.workers["sweep"]()]
        self.service: BalanceService = self.roles[0].parts
        self.app = create_app(self.settings, consumer_health=self.service.consumer.health)
        self.client = authorized(self.app.test_client(), self.settings.balance_token)
        self._threads: list[Threads] = []

    @property
    def engine(self) -> sa.Engine:
        return self.service.engine

    def __enter__(self) -> InProcessBalance:
        self._threads = [Threads(role.threads).start() for role in self.roles]
        wait_for(lambda: self.service.consumer.health.connected, 60, what="balance consumer connected")
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        for threads in self._threads:
            threads.stop.set()
        for threads, role in zip(self._threads, self.roles, strict=True):
            threads.join(timeout_s=30)
            role.close()

    def wait_caught_up(self, timeout_s: float = 60) -> None:
        wait_for(lambda: caught_up(self.engine, self.bootstrap, self.prefix), timeout_s, what="projection caught up")

    def get(self, path: str, status: int = 200) -> Any:
        answer = self.client.get(path)
        assert answer.status_code == status, (path, answer.status_code, answer.get_data(as_text=True))
        return answer.get_json()
