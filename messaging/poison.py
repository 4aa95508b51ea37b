"""Poison records: parked in `<topic>.dlq`, never fatal (SPEC, ARCHITECTURE "Poison events").

One mechanism for every consumer (the live loop of balance and notify, and balance's replay):

- a record that is not a valid event of any contract is parked as it is read;
- a batch whose projection fails is applied again in halves, down to one event at a time
  (`apply_isolating_poison`): an event that fails on its own, the same way, is parked, and the events
  around it are applied, in log order, with the stored offset moving past it;
- an infrastructure failure (the database or the broker out of reach, a lock that does not clear, a
  schema the code does not match) is no event's fault: it propagates, and the partition stops and is
  retried from its stored offset. Parking then would set aside every event of the outage.

The headers of a parked record name the source topic, partition and offset, the error and the consumer
that parked it; `reciprocity dlq list|redrive` and balance's /v1/dead-letters read them
(reciprocity.balance.dead_letters).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from prometheus_client import Counter

from .tracking import OffsetRange, PartitionKey, StaleBatch

if TYPE_CHECKING:
    from .consumer import Delivered, Projection

log = logging.getLogger(__name__)

# Module level: prometheus_client's registry is process-wide.
PARKED = Counter("reciprocity_records_parked_total", "Records parked in <topic>.dlq by a consumer",
                 ["topic", "consumer", "why"])

ERROR_MAX = 500

Park = Callable[["Delivered", BaseException], None]


# PEP 249 exception classes (SQLAlchemy's wrappers carry the same names) that say the database, not the
# event, is at fault: unreachable or restarting, a pool that gave up waiting, a lock or deadlock the
# projection's own retries did not clear (OperationalError); a table or column the running code expects
# but the schema lacks (ProgrammingError); the driver's own trouble. By name, so the raw driver errors of
# code that talks to the driver directly (psycopg's COPY, sqlite3) count too. A value the database refuses
# (DataError: a NUL in a text on PostgreSQL, a number beyond a column) or a constraint it breaks
# (IntegrityError) is the event's.
_DATABASE_AWAY = frozenset({"OperationalError", "InterfaceError", "ProgrammingError", "InternalError",
                            "NotSupportedError", "DisconnectionError", "ResourceClosedError"})


def is_infrastructure_failure(err: BaseException) -> bool:
    """Whether `err` says the infrastructure failed, not the event: stop and retry, never park."""
    from kafka.errors import KafkaError
    from sqlalchemy import exc as sa_exc

    from .event_log import BrokerUnavailable

    if isinstance(err, KafkaError | BrokerUnavailable | ConnectionError | TimeoutError | MemoryError
                  | sa_exc.TimeoutError):
        return True
    return any(cls.__name__ in _DATABASE_AWAY for cls in type(err).__mro__)


def describe_failure(err: BaseException) -> str:
    """One line naming what failed, for the DLQ header and health: the error's class and first line,
    without the SQL statement and parameters SQLAlchemy appends (they hold notes and names)."""
    from sqlalchemy.exc import StatementError

    cause: BaseException = err
    if isinstance(err, StatementError) and err.orig is not None:  # DBAPIError too: the driver's own error
        cause = err.orig
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    return f"{type(cause).__name__}: {text}"[:ERROR_MAX] if text else type(cause).__name__


def apply_isolating_poison(projection: Projection, key: PartitionKey, events: Sequence[Delivered],
                           span: OffsetRange, park: Park) -> int:
    """Apply one partition's `events` (in log order, all inside `span`), parking each event whose
    projection fails on its own; returns how many were parked.

    Tries the whole batch first; when it fails for an event's fault, applies each half on its own,
    recursively, so k poison events among n cost about 2·k·log2(n) transactions, not n. Each piece moves
    the stored offset over its own part of the span, so after a parked event the stored offset is past
    it and nothing before it is applied twice. Infrastructure failures and StaleBatch propagate (the
    pieces applied so far are committed, and the consumer resumes from the stored offset)."""
    try:
        projection.apply(events, {key: span})
        return 0
    except StaleBatch:
        raise
    except Exception as err:
        if is_infrastructure_failure(err) or not events:
            raise
        if len(events) == 1:
            park(events[0], err)
            projection.apply([], {key: span})  # past the parked event (an unreachable database raises here)
            return 1
        log.warning("batch of %s failed (%s); applying it in halves to find the event at fault",
                    _label(key), describe_failure(err))
    middle = len(events) // 2
    split = events[middle].offset
    parked = apply_isolating_poison(projection, key, events[:middle], OffsetRange(span.first, split), park)
    return parked + apply_isolating_poison(projection, key, events[middle:], OffsetRange(split, span.next), park)


def _label(key: PartitionKey) -> str:
    return f"{key[0]}[{key[1]}]"


def dlq_headers(topic: str, partition: int, offset: int, error: str, consumer: str) -> tuple[tuple[str, bytes], ...]:
    """The headers every parked record carries (one format for every consumer)."""
    return (
        ("dlq.source.topic", topic.encode()),
        ("dlq.source.partition", str(partition).encode()),
        ("dlq.source.offset", str(offset).encode()),
        ("dlq.error", error.encode()[:2000]),
        ("dlq.consumer.group", consumer.encode()),
    )


def apply_parking_poison(projection: Projection, events: Sequence[Delivered],
                         offsets: dict[PartitionKey, OffsetRange], park: Park) -> int:
    """Apply a batch of several partitions at once; when it fails for an event's fault, each partition's
    part on its own with `apply_isolating_poison`. Returns how many events were parked. For a consumer
    that goes through the log alone (a replay); the live loop stops a partition on an infrastructure
    failure instead of raising, and so does this per partition itself."""
    try:
        projection.apply(events, offsets)
        return 0
    except StaleBatch:
        raise
    except Exception as err:
        if is_infrastructure_failure(err):
            raise
        log.warning("batch failed (%s); looking for the event at fault, partition by partition",
                    describe_failure(err))
    return sum(apply_isolating_poison(projection, key, [e for e in events if (e.topic, e.partition) == key], span,
                                      park) for key, span in offsets.items())
