"""Reading topics outside a consumer group: end offsets for lag, and whole-topic reads for rebuilding
write-side state, listing dead letters and exporting."""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from .consumer import PartitionKey
from .event_log import RECONNECT_BACKOFF_MAX_MS, BrokerUnavailable


@dataclass(frozen=True)
class RawRecord:
    topic: str  # logical name
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]
    timestamp_ms: int


def _reader(bootstrap_servers: str, timeout_s: float) -> KafkaConsumer:
    try:
        return KafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            request_timeout_ms=int(timeout_s * 1000) + 1000,
            bootstrap_timeout_ms=int(timeout_s * 1000),
            reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )
    except KafkaError as err:
        raise BrokerUnavailable(f"cannot reach Kafka at {bootstrap_servers}: {err!r}") from err


def _partitions(consumer: KafkaConsumer, physical: str) -> list[TopicPartition]:
    found = consumer.partitions_for_topic(physical)
    if not found:
        raise BrokerUnavailable(f"topic {physical} does not exist (yet)")
    return [TopicPartition(physical, p) for p in sorted(found)]


def end_offsets(
    bootstrap_servers: str, topics: Sequence[str], *, topic_prefix: str = "", timeout_s: float = 5.0
) -> dict[PartitionKey, int]:
    """The last stable offset + 1 of every partition of `topics` (logical names)."""
    consumer = _reader(bootstrap_servers, timeout_s)
    try:
        tps = [tp for t in topics for tp in _partitions(consumer, topic_prefix + t)]
        ends = consumer.end_offsets(tps, timeout_ms=int(timeout_s * 1000))
        return {(tp.topic[len(topic_prefix):], tp.partition): off for tp, off in ends.items()}
    except KafkaError as err:
        raise BrokerUnavailable(f"cannot read end offsets: {err!r}") from err
    finally:
        consumer.close()


def read_all(
    bootstrap_servers: str, topics: Sequence[str], *, topic_prefix: str = "", timeout_s: float = 10.0
) -> Iterator[RawRecord]:
    """Every committed record of `topics` from the beginning up to their end offsets at the call,
    partition by partition (order holds within a partition, which is all Kafka promises)."""
    consumer = _reader(bootstrap_servers, timeout_s)
    try:
        tps = [tp for t in topics for tp in _partitions(consumer, topic_prefix + t)]
        ends = consumer.end_offsets(tps, timeout_ms=int(timeout_s * 1000))
        todo = {tp for tp in tps if ends[tp] > 0}
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        while todo:
            polled = consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=10_000)
            if not polled:
                # Aborted transactions or compaction can leave the position short of the end offset.
                todo = {tp for tp in todo if consumer.position(tp) < ends[tp]}
                if todo:
                    raise BrokerUnavailable(f"no records within {timeout_s}s from {sorted(map(str, todo))}")
                break
            for tp, records in polled.items():
                for r in records:
                    if r.offset >= ends[tp]:
                        continue
                    yield RawRecord(
                        topic=tp.topic[len(topic_prefix):],
                        partition=tp.partition,
                        offset=r.offset,
                        key=r.key,
                        value=r.value,
                        headers={k: v for k, v in (r.headers or [])},
                        timestamp_ms=r.timestamp,
                    )
                if consumer.position(tp) >= ends[tp]:
                    todo.discard(tp)
                    consumer.pause(tp)
    except KafkaError as err:
        raise BrokerUnavailable(f"cannot read {list(topics)}: {err!r}") from err
    finally:
        consumer.close()
