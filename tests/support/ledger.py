"""Helpers for the ledger's tests: an in-process ledger on a real broker, and reading back what it
appended (decoded records, not offsets: transaction markers take offsets too)."""

from __future__ import annotations

import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from reciprocity.common.sealing import LedgerKeySource, Opener
from reciprocity.contracts.envelope import Envelope, decode
from reciprocity.contracts.events import Event
from reciprocity.contracts.topics import LEDGER_TOPICS, all_topics
from reciprocity.ledger.app import create_app, keep_loaded, ledger_of
from reciprocity.ledger.settings import LedgerSettings
from reciprocity.messaging.event_log import BrokerUnavailable
from reciprocity.messaging.inspect import read_all
from reciprocity.messaging.topics_admin import ensure_topics

from .services import wait_for

TOKEN = "test-ledger-token"
# The default of InProcessLedger.call's `key`: a new Idempotency-Key for each command.
FRESH_KEY: Any = object()


def new_prefix(label: str = "ledger") -> str:
    return f"t.{label}.{uuid.uuid4().hex[:10]}."


def read_events(bootstrap: str, prefix: str, *, ledger_url: str | None = None) -> list[tuple[Envelope, Event]]:
    """The ledger's events as any consumer decodes them; with `ledger_url`, opened with keys from that
    ledger's key API (the local development token)."""
    decoded = [decode(r.value) for r in read_all(bootstrap, LEDGER_TOPICS, topic_prefix=prefix)]
    if ledger_url is None:
        return decoded
    opener = Opener(LedgerKeySource(ledger_url, LedgerSettings().ledger_keys_token))
    return [(env, opener.open_event(event, str(env.event_id))) for env, event in decoded]


@dataclass
class InProcessLedger:
    app: Flask
    client: FlaskClient
    bootstrap: str
    prefix: str

    def call(self, method: str, path: str, body: Any = None, *, key: str | None = FRESH_KEY,
             token: str | None = TOKEN, headers: dict[str, str] | None = None, data: bytes | str | None = None) -> Any:
        """`key`: the Idempotency-Key of a POST or PUT (the ledger requires one); by default a fresh one,
        None sends none."""
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if key is FRESH_KEY:
            key = f"test-{uuid.uuid4()}" if method in ("POST", "PUT") else None
        if key is not None:
            sent["Idempotency-Key"] = key
        if data is not None:
            return self.client.open(path, method=method, data=data, headers=sent, content_type="application/json")
        return self.client.open(path, method=method, json=body, headers=sent)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.call("POST", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.call("PUT", path, body, **kw)

    def get(self, path: str, **kw: Any) -> Any:
        return self.call("GET", path, **kw)

    def events(self) -> list[tuple[Envelope, Event]]:
        """What the ledger appended, opened with its keys (sealed values as clear text)."""
        opener = Opener(ledger_of(self.app).keys)
        return [(env, opener.open_event(event, str(env.event_id))) for env, event in self.sealed_events()]

    def sealed_events(self) -> list[tuple[Envelope, Event]]:
        """What the ledger appended, as any consumer decodes it."""
        return read_events(self.bootstrap, self.prefix)

    def count(self) -> int:
        return len(self.events())

    def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> dict[str, Any]:
        """A command that must succeed; its answer's body."""
        answer = self.call(method, path, body, **kw)
        assert answer.status_code in (200, 201), (method, path, answer.status_code, answer.get_json())
        return answer.get_json()

    def when_kafka_answers(self, method: str, path: str, body: Any = None, *, key: str | None = None,
                           timeout_s: float = 90) -> Any:
        """The answer to a command once Kafka answered the ledger in time: while it says 503 (a broker
        just started, a busy machine: the producer's InitProducerId can outlast a short timeout) the
        command is sent again with the same Idempotency-Key, which is safe (a repeat appends nothing),
        until the deadline."""
        key = key or f"test-{uuid.uuid4()}"

        def answered() -> Any:
            answer = self.call(method, path, body, key=key)
            return answer if answer.status_code != 503 else None

        return wait_for(answered, timeout_s, interval_s=0.5, what=f"{method} {path} answered without a 503")

    def ok_when_kafka_answers(self, method: str, path: str, body: Any = None, **kw: Any) -> dict[str, Any]:
        answer = self.when_kafka_answers(method, path, body, **kw)
        assert answer.status_code in (200, 201), (method, path, answer.status_code, answer.get_json())
        return answer.get_json()


@contextmanager
def in_process_ledger(bootstrap: str, prefix: str | None = None, **settings: Any) -> Iterator[InProcessLedger]:
    """create_app on its own topics, loaded, with the loader worker main() runs (it reloads the state
    after a failed append)."""
    prefix = prefix or new_prefix()
    ensure_topics(bootstrap, all_topics(prefix))
    settings.setdefault("ledger_keys_database_url", f"sqlite:///{tempfile.mkdtemp(prefix='ledger-keys-')}/keys.db")
    config = LedgerSettings(kafka_bootstrap_servers=bootstrap, topic_prefix=prefix, ledger_token=TOKEN, **settings)
    app = create_app(config)

    def loaded() -> bool:
        # With a short kafka_timeout_s a busy machine can outlast it (InitProducerId "Cancelled"): a
        # condition with a deadline, as the service's own loader retries, not one attempt.
        try:
            ledger_of(app).load()
            return True
        except BrokerUnavailable:
            return False

    wait_for(loaded, 90, interval_s=0.5, what="the ledger to load its state (Kafka answering in time)")
    stop = threading.Event()
    worker = threading.Thread(target=keep_loaded(app, config), args=(stop,), name="ledger-loader", daemon=True)
    worker.start()
    try:
        yield InProcessLedger(app, app.test_client(), bootstrap, prefix)
    finally:
        stop.set()
        worker.join(timeout=60)
        ledger_of(app).event_log.close()
