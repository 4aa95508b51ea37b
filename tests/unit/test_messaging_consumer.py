"""The consumer's bookkeeping on a rebalance, without a broker (the listener is called as kafka-python would)."""

from reciprocity.messaging.consumer import ProjectionConsumer, _SeekToStored


class NoProjection:
    def load_offsets(self, partitions):  # type: ignore[no-untyped-def]
        return {}

    def apply(self, events, offsets) -> None:  # type: ignore[no-untyped-def]
        raise AssertionError("not called")


def test_a_revoked_stopped_partition_no_longer_makes_this_process_unhealthy() -> None:
    consumer = ProjectionConsumer("127.0.0.1:9", group_id="g", topics=["ledger.directory"],
                                  projection=NoProjection(), dead_letters=None, topic_prefix="p.")  # type: ignore[arg-type]
    consumer.health.connected = True
    stopped, kept = consumer._tp(("ledger.directory", 3)), consumer._tp(("ledger.directory", 1))
    consumer.health.failed_partitions = {"ledger.directory[3]": "boom", "ledger.directory[1]": "bang"}
    consumer._paused_since = {stopped: 0.0, kept: 0.0}
    consumer._dead_lettered = {(stopped, 7), (kept, 2)}

    _SeekToStored(consumer).on_partitions_revoked([stopped])

    assert consumer.health.failed_partitions == {"ledger.directory[1]": "bang"}  # someone else retries [3] now
    assert set(consumer._paused_since) == {kept}
    assert consumer._dead_lettered == {(kept, 2)}
    assert stopped.topic == "p.ledger.directory"


# --- poison is parked, not fatal ---------------------------------------------------------------------------

import uuid  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

import pytest  # noqa: E402
import sqlalchemy.exc  # noqa: E402
from reciprocity.contracts.envelope import wrap  # noqa: E402
from reciprocity.contracts.events import MemberJoinedCircle  # noqa: E402
from reciprocity.messaging.consumer import Delivered, OffsetRange, StaleBatch  # noqa: E402
from reciprocity.messaging.poison import apply_isolating_poison, describe_failure, is_infrastructure_failure  # noqa: E402

KEY = ("ledger.directory", 0)


def delivered(offset: int, circle: str = "c-ok") -> Delivered:
    event = MemberJoinedCircle(member_id="ada-l", circle_id=circle)
    env = wrap(event, producer="test", event_id=uuid.uuid4(), occurred_at=datetime.now(UTC))
    return Delivered(KEY[0], KEY[1], offset, env, event, b"ada-l", f"raw-{offset}".encode())


class ListProjection:
    """Applies events to a list in one 'transaction' (all or nothing), with a compare-and-set offset. An
    event whose circle is 'c-poison' fails every time; `down` makes every apply fail as a database away."""

    def __init__(self) -> None:
        self.applied: list[int] = []
        self.next: int | None = None
        self.transactions = 0
        self.down = False

    def load_offsets(self, partitions):  # type: ignore[no-untyped-def]
        return {KEY: self.next} if self.next is not None else {}

    def apply(self, events, offsets) -> None:  # type: ignore[no-untyped-def]
        self.transactions += 1
        if self.down:
            raise sqlalchemy.exc.OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))
        span = offsets[KEY]
        if self.next is not None and self.next != span.first:
            raise StaleBatch("moved")
        for e in events:
            if e.event.circle_id == "c-poison":
                raise OverflowError("date value out of range")
        self.applied += [e.offset for e in events]
        self.next = span.next


def test_poison_events_are_parked_and_the_rest_applied_in_order() -> None:
    projection, parked = ListProjection(), []
    events = [delivered(o, "c-poison" if o in (3, 11) else "c-ok") for o in range(2, 20)]
    count = apply_isolating_poison(projection, KEY, events, OffsetRange(2, 21), lambda e, err: parked.append(
        (e.offset, describe_failure(err))))
    assert count == 2
    assert parked == [(3, "OverflowError: date value out of range"), (11, "OverflowError: date value out of range")]
    assert projection.applied == [o for o in range(2, 20) if o not in (3, 11)]
    assert projection.next == 21  # past the batch, the commit marker after it included
    assert projection.transactions < 18  # halves, not one transaction per event


def test_an_unreachable_database_is_not_poison() -> None:
    projection = ListProjection()
    projection.down = True
    with pytest.raises(sqlalchemy.exc.OperationalError):
        apply_isolating_poison(projection, KEY, [delivered(0)], OffsetRange(0, 1), lambda e, err: None)
    assert is_infrastructure_failure(projection_error := sqlalchemy.exc.OperationalError("x", {}, OSError()))
    assert not is_infrastructure_failure(sqlalchemy.exc.DataError("INSERT", {"note": "secret"}, ValueError("NUL")))
    assert "secret" not in describe_failure(sqlalchemy.exc.DataError("INSERT", {"note": "secret"}, ValueError("NUL")))
    assert projection_error is not None


class FakeKafka:
    def __init__(self) -> None:
        self.paused: list = []

    def pause(self, tp) -> None:  # type: ignore[no-untyped-def]
        self.paused.append(tp)

    def assignment(self):  # type: ignore[no-untyped-def]
        return set()


class FakeDlq:
    def __init__(self) -> None:
        self.appended: list = []

    def append(self, outgoing):  # type: ignore[no-untyped-def]
        self.appended += outgoing


def _consumer(projection):  # type: ignore[no-untyped-def]
    dlq = FakeDlq()
    consumer = ProjectionConsumer("127.0.0.1:9", group_id="balance", topics=["ledger.directory"],
                                  projection=projection, dead_letters=dlq, topic_prefix="p.")  # type: ignore[arg-type]
    consumer._consumer = FakeKafka()  # type: ignore[assignment]
    consumer.health.connected = True
    return consumer, dlq


def _parked_metric() -> float:
    from prometheus_client import REGISTRY

    labels = {"topic": "ledger.directory", "consumer": "p.balance", "why": "unprojectable"}
    return REGISTRY.get_sample_value("reciprocity_records_parked_total", labels) or 0.0


def test_the_consumer_parks_a_poison_event_with_headers_and_stays_healthy() -> None:
    projection = ListProjection()
    consumer, dlq = _consumer(projection)
    counted = _parked_metric()
    events = [delivered(0), delivered(1, "c-poison"), delivered(2)]
    consumer._apply(events, {KEY: OffsetRange(0, 3)})
    consumer._apply(events[2:], {KEY: OffsetRange(2, 3)})  # a retried batch: stale, and nothing parked twice
    assert projection.applied == [0, 2] and projection.next == 3
    (record,) = dlq.appended
    assert record.topic == "ledger.directory.dlq" and record.value == b"raw-1" and record.key == b"ada-l"
    headers = dict(record.headers)
    assert headers["dlq.source.topic"] == b"ledger.directory" and headers["dlq.source.partition"] == b"0"
    assert headers["dlq.source.offset"] == b"1" and headers["dlq.consumer.group"] == b"p.balance"
    assert headers["dlq.error"] == b"projection failed: OverflowError: date value out of range"
    assert consumer.health.healthy and consumer.health.summary() == {"stopped_partitions": {},
                                                                     "parked_since_start": 1}
    assert _parked_metric() == counted + 1


def test_the_consumer_stops_a_partition_when_the_database_is_away_and_parks_nothing() -> None:
    projection = ListProjection()
    projection.down = True
    consumer, dlq = _consumer(projection)
    consumer._apply([delivered(0), delivered(1)], {KEY: OffsetRange(0, 2)})
    assert dlq.appended == [] and projection.applied == []
    assert not consumer.health.healthy
    assert "ledger.directory[0]" in consumer.health.summary()["stopped_partitions"]  # type: ignore[operator]


def test_a_batch_starts_at_the_stored_offset_and_leaves_unreadable_records_out_of_its_events() -> None:
    """to_batch, the one record-to-batch conversion of the consumer and the replay: a partition's range
    starts where the stored offset stands (a commit marker at offset 10 sits before the first record), or at
    its first record when nothing is stored; an unreadable record is handed over for dead-lettering and
    still covered by the range, so the offset moves past it."""
    from types import SimpleNamespace

    from reciprocity.contracts.envelope import encode
    from reciprocity.messaging.consumer import to_batch

    other = ("ledger.exchanges", 2)
    good = encode(delivered(0).envelope)
    records = [(KEY, SimpleNamespace(offset=11, key=b"ada-l", value=good)),
               (KEY, SimpleNamespace(offset=12, key=b"x", value=b"not an event")),
               (KEY, SimpleNamespace(offset=13, key=b"ada-l", value=good)),
               (other, SimpleNamespace(offset=40, key=None, value=good))]
    unreadable: list[tuple[tuple[str, int], int, bytes]] = []
    events, ranges = to_batch(records, {KEY: 10}.get, lambda key, r, err: unreadable.append((key, r.offset, r.value)))
    assert [(e.topic, e.partition, e.offset) for e in events] == [(*KEY, 11), (*KEY, 13), (*other, 40)]
    assert events[0].raw_value == good and events[0].raw_key == b"ada-l"
    assert ranges == {KEY: OffsetRange(first=10, next=14), other: OffsetRange(first=40, next=41)}
    assert unreadable == [(KEY, 12, b"not an event")]
