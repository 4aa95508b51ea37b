"""Every Kafka client of ours retries a lost broker at least once a second: kafka-python's default
backoff grows to 30 s, and the ledger (whose state loader reads through `inspect`) kept answering 503
for some 20 s after the broker was back (found by `make chaos`)."""

from typing import Any

import pytest
from reciprocity.messaging import inspect, topics_admin
from reciprocity.messaging.event_log import RECONNECT_BACKOFF_MAX_MS


class Captured(Exception):
    pass


def capture(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def fake(*_args: Any, **kwargs: Any) -> None:
        seen.update(kwargs)
        raise Captured

    monkeypatch.setattr(module, name, fake)
    return seen


def test_the_reader_and_the_admin_client_retry_a_lost_broker_within_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    assert RECONNECT_BACKOFF_MAX_MS <= 1000
    reader = capture(monkeypatch, inspect, "KafkaConsumer")
    with pytest.raises(Captured):
        inspect._reader("127.0.0.1:9", timeout_s=1.0)
    assert reader["reconnect_backoff_max_ms"] == RECONNECT_BACKOFF_MAX_MS

    admin = capture(monkeypatch, topics_admin, "KafkaAdminClient")
    with pytest.raises(Captured):
        topics_admin.ensure_topics("127.0.0.1:9", {"t": (1, {})})
    assert admin["reconnect_backoff_max_ms"] == RECONNECT_BACKOFF_MAX_MS
