"""Appending events to Kafka: the only writer API of the product.

A command may append several events (joining two circles at once); with a `transactional_id` they are
appended in one Kafka transaction, so consumers reading committed records see all of them or none,
and a failed request appends nothing visible. Every wait is bounded: an unreachable broker becomes
`BrokerUnavailable` within `timeout_s`, never a hung request.
"""

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError
from reciprocity.contracts.envelope import Envelope, encode

log = logging.getLogger(__name__)
T = TypeVar("T")


# The longest wait between two attempts to reach a broker. kafka-python's default is 30 s, doubling from
# 50 ms: after a broker outage of a minute a client sleeps some 20 s past the broker's return, and the
# ledger, whose state loader reads through such a client, answered 503 that much longer (make chaos).
RECONNECT_BACKOFF_MAX_MS = 1000


class BrokerUnavailable(RuntimeError):
    """Kafka could not take the events in time; nothing was appended (or it was aborted)."""


@dataclass(frozen=True)
class Position:
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class Outgoing:
    topic: str  # logical name, e.g. "ledger.exchanges"; the log adds its prefix
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()

    @classmethod
    def event(cls, topic: str, envelope: Envelope) -> "Outgoing":
        return cls(topic=topic, key=envelope.key.encode(), value=encode(envelope))


class EventLog:
    def __init__(
        self,
        bootstrap_servers: str,
        *,
        client_id: str,
        topic_prefix: str = "",
        transactional_id: str | None = None,
        timeout_s: float = 5.0,
        linger_ms: int = 0,
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._client_id = client_id
        self.topic_prefix = topic_prefix
        self._transactional_id = transactional_id
        self._timeout_s = timeout_s
        self._linger_ms = linger_ms
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()  # one transaction at a time per producer

    def physical(self, topic: str) -> str:
        return self.topic_prefix + topic

    def append(self, records: Sequence[Outgoing]) -> list[Position]:
        """Append `records` in order; all land or (with transactions) none is visible."""
        with self._lock:
            producer = self._connected()
            try:
                if self._transactional_id:
                    producer.begin_transaction()
                futures = [
                    producer.send(
                        self.physical(r.topic), key=r.key, value=r.value, headers=list(r.headers)
                    )
                    for r in records
                ]
                metadata = [f.get(timeout=self._timeout_s) for f in futures]
                if self._transactional_id:
                    self._bounded(producer.commit_transaction)
                else:
                    producer.flush(timeout=self._timeout_s)
            except (KafkaError, TimeoutError) as err:
                self._abandon(producer, err)
                raise BrokerUnavailable(f"Kafka did not take the events: {err!r}") from err
            return [
                Position(topic=r.topic, partition=m.partition, offset=m.offset)
                for r, m in zip(records, metadata, strict=True)
            ]

    def ping(self, topic: str) -> bool:
        """True when the broker answers a metadata request for `topic` (logical name)."""
        with self._lock:
            try:
                producer = self._connected()
                return bool(self._bounded(lambda: producer.partitions_for(self.physical(topic))))
            except (BrokerUnavailable, KafkaError, TimeoutError):
                return False

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=self._timeout_s)
                self._producer = None

    def _connected(self) -> KafkaProducer:
        if self._producer is not None:
            return self._producer
        try:
            producer = KafkaProducer(
                bootstrap_servers=self._bootstrap,
                client_id=self._client_id,
                acks="all",
                enable_idempotence=True,
                transactional_id=self._transactional_id,
                linger_ms=self._linger_ms,
                max_block_ms=int(self._timeout_s * 1000),
                bootstrap_timeout_ms=int(self._timeout_s * 1000),  # 30 s by default: a hung request
                request_timeout_ms=int(self._timeout_s * 1000),
                delivery_timeout_ms=int(self._timeout_s * 1000) + self._linger_ms + 1000,
                reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
                # A new transaction is refused (CONCURRENT_TRANSACTIONS) while the last one's markers
                # are being written; the default 100 ms backoff made every command take 110 ms.
                retry_backoff_ms=5,
            )
        except (KafkaError, TimeoutError) as err:
            raise BrokerUnavailable(f"cannot reach Kafka at {self._bootstrap}: {err!r}") from err
        if self._transactional_id:
            try:
                # Fences any earlier producer with this id and aborts its unfinished transaction.
                self._bounded(producer.init_transactions)
            except (KafkaError, TimeoutError) as err:
                producer.close(timeout=0)  # not left for the garbage collector to close
                raise BrokerUnavailable(f"Kafka did not start a transactional session: {err!r}") from err
        self._producer = producer
        return producer

    def _bounded(self, action: Callable[[], T]) -> T:
        """Run `action` for at most timeout_s. kafka-python waits on commit and abort without a
        timeout; a dead broker must not hang a request (a stuck daemon thread is the lesser evil)."""
        outcome: list[T] = []
        failure: list[BaseException] = []

        def run() -> None:
            try:
                outcome.append(action())
            except BaseException as err:
                failure.append(err)

        worker = threading.Thread(target=run, name="event-log-wait", daemon=True)
        worker.start()
        worker.join(self._timeout_s)
        if worker.is_alive():
            raise TimeoutError(f"Kafka did not answer within {self._timeout_s}s")
        if failure:
            raise failure[0]
        return outcome[0]

    def _abandon(self, producer: KafkaProducer, cause: BaseException) -> None:
        """Drop a producer after a failure. An open transaction is aborted now unless the broker is
        out of reach; then the next producer's init_transactions (or the transaction timeout) aborts
        it. Either way it is never committed."""
        self._producer = None
        if self._transactional_id and not isinstance(cause, (TimeoutError, KafkaTimeoutError)):
            try:
                self._bounded(producer.abort_transaction)
            except Exception as err:  # the broker is gone; fencing will finish the abort
                log.warning("could not abort transaction: %r", err)
        try:
            producer.close(timeout=0)
        except Exception as err:
            log.debug("closing abandoned producer: %r", err)
