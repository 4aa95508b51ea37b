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

import threading
from collections.abc import Callable
from functools import partial

from reciprocity.common.service import ApiProcess, ServiceRoles, WorkerRole
from reciprocity.contracts.topics import SIGNALS

from .app import BalanceService, create_app, database_problem
from .db import make_engine
from .db import migrate as migrate_schema
from .settings import BalanceSettings


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
