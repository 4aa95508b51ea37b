"""The consumer loop against a transactional writer (as the ledger is): commit markers take offsets
that no record is returned for, and the loop must neither stall on them nor show them as lag. And the
loop's failures: a database that goes away (stop and retry), a poison record (parked once, the rest goes on)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from reciprocity.contracts.envelope import decode, encode, wrap
from reciprocity.contracts.events import CircleFormed
from reciprocity.contracts.topics import DIRECTORY, all_topics, dlq_topic
from reciprocity.messaging.consumer import Delivered, OffsetRange, PartitionKey, ProjectionConsumer, StaleBatch
from reciprocity.messaging.event_log import EventLog, Outgoing
from reciprocity.messaging.inspect import end_offsets, read_all
from reciprocity.messaging.topics_admin import ensure_topics

from tests.support.services import wait_for


class StrictProjection:
    """Keeps offsets like a database would, with a strict compare-and-set: stored must equal first."""

    def __init__(self) -> None:
        self.offsets: dict[PartitionKey, int] = {}
        self.circles: list[str] = []

    def load_offsets(self, partitions: Sequence[PartitionKey]) -> dict[PartitionKey, int]:
        return {p: self.offsets[p] for p in partitions if p in self.offsets}

    def apply(self, events: Sequence[Delivered], offsets: dict[PartitionKey, OffsetRange]) -> None:
        for key, span in offsets.items():
            if key in self.offsets and self.offsets[key] != span.first:
                raise StaleBatch(f"{key} stored at {self.offsets[key]}, batch continues from {span.first}")
        self.circles.extend(e.event.circle_id for e in events)  # type: ignore[attr-defined]
        for key, span in offsets.items():
            self.offsets[key] = span.next


class FlakyProjection(StrictProjection):
    """A database that can be down (every call fails) and a circle that can never be projected."""

    def __init__(self, refuse: str = "") -> None:
        super().__init__()
        self.down = False
        self.refuse = refuse
        self.attempts = 0  # calls of apply
        self.refusals = 0  # calls of either while down

    def load_offsets(self, partitions: Sequence[PartitionKey]) -> dict[PartitionKey, int]:
        if self.down:
            self.refusals += 1
            raise ConnectionError("database is down")
        return super().load_offsets(partitions)

    def apply(self, events: Sequence[Delivered], offsets: dict[PartitionKey, OffsetRange]) -> None:
        self.attempts += 1
        if self.down:
            self.refusals += 1
            raise ConnectionError("database is down")
        if any(e.event.circle_id == self.refuse for e in events):  # type: ignore[attr-defined]
            raise ValueError(f"cannot project {self.refuse}")
        super().apply(events, offsets)


@contextmanager
def consuming(bootstrap: str, prefix: str, projection: StrictProjection,
              **options: float) -> Iterator[ProjectionConsumer]:
    consumer = ProjectionConsumer(bootstrap, group_id="strict", topics=[DIRECTORY.name], projection=projection,
                                  dead_letters=EventLog(bootstrap, client_id="dlq", topic_prefix=prefix),
                                  topic_prefix=prefix, **options)
    stop = threading.Event()
    worker = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    worker.start()
    try:
        yield consumer
    finally:
        stop.set()
        worker.join(timeout=30)


def test_transactional_appends_are_applied_once_and_leave_no_lag(kafka_bootstrap: str, unique_id: str) -> None:
    prefix = f"t.msg.{unique_id}."
    ensure_topics(kafka_bootstrap, all_topics(prefix))
    ledger = EventLog(kafka_bootstrap, client_id="ledger", topic_prefix=prefix, transactional_id=prefix + "ledger")

    def form(n: int) -> None:
        event = CircleFormed(circle_id=f"circle-{n}", name=f"Circle {n}")
        ledger.append([Outgoing.event(DIRECTORY.name, wrap(event, producer="test"))])

    projection = StrictProjection()
    for n in range(10):
        form(n)
    with consuming(kafka_bootstrap, prefix, projection) as consumer:
        wait_for(lambda: len(projection.circles) == 10, 60, what="the first ten events")
        for n in range(10, 25):  # one transaction each, while the consumer is polling
            form(n)
        wait_for(lambda: len(projection.circles) == 25, 60, what="events appended while consuming")
        ends = end_offsets(kafka_bootstrap, [DIRECTORY.name], topic_prefix=prefix)
        wait_for(lambda: all(projection.offsets.get(k, 0) == end for k, end in ends.items() if end), 30,
                 what="stored offsets to reach the end offsets, past the commit markers")
        assert consumer.health.healthy, consumer.health.reason()

    # A new consumer resumes from the stored offsets: it sees only what came after.
    for n in range(25, 30):
        form(n)
    with consuming(kafka_bootstrap, prefix, projection):
        wait_for(lambda: len(projection.circles) == 30, 60, what="events appended while no one consumed")
    assert sorted(projection.circles) == sorted(f"circle-{n}" for n in range(30))
    ledger.close()


def circle_formed(n: int | str) -> Outgoing:
    circle_id = f"circle-{n}"
    return Outgoing.event(DIRECTORY.name, wrap(CircleFormed(circle_id=circle_id, name=circle_id), producer="test"))


def test_the_loop_outlives_a_database_outage(kafka_bootstrap: str, unique_id: str) -> None:
    prefix = f"t.msgdown.{unique_id}."
    ensure_topics(kafka_bootstrap, all_topics(prefix))
    writer = EventLog(kafka_bootstrap, client_id="test", topic_prefix=prefix)
    projection = FlakyProjection()
    projection.down = True  # from the start: the stored offsets cannot even be read on assignment
    writer.append([circle_formed(n) for n in range(8)])
    with consuming(kafka_bootstrap, prefix, projection, retry_failed_after_s=0.3) as consumer:
        wait_for(lambda: "database is down" in (consumer.health.reason() or ""), 60,
                 what="health to name the database, not Kafka")
        wait_for(lambda: projection.refusals >= 3, 60, what="a few retries against the dead database")
        projection.down = False
        wait_for(lambda: len(projection.circles) == 8, 60, what="every event once the database is back")
        wait_for(lambda: consumer.health.healthy, 30, what="health to recover")

        projection.down = True  # and again while running: a failed batch, then failed retries to resume
        writer.append([circle_formed(n) for n in range(8, 12)])
        wait_for(lambda: "database is down" in (consumer.health.reason() or ""), 60,
                 what="a failed batch while the database is down")
        refused = projection.refusals
        wait_for(lambda: projection.refusals >= refused + 2, 60, what="failed retries to resume")
        projection.down = False
        wait_for(lambda: len(projection.circles) == 12, 60, what="the rest once the database is back")
        wait_for(lambda: consumer.health.healthy, 30, what="health to recover again")
    assert sorted(projection.circles) == sorted(f"circle-{n}" for n in range(12))
    writer.close()


def test_poison_is_parked_once_and_the_partition_goes_on(kafka_bootstrap: str, unique_id: str) -> None:
    prefix = f"t.msgpoison.{unique_id}."
    ensure_topics(kafka_bootstrap, all_topics(prefix))
    writer = EventLog(kafka_bootstrap, client_id="test", topic_prefix=prefix)
    # Same key, so same partition and batch: an unreadable record, an event the projection refuses every
    # time it is tried, and one after them.
    stuck = circle_formed("stuck")
    after = Outgoing(DIRECTORY.name, stuck.key,
                     encode(wrap(CircleFormed(circle_id="circle-after", name="after"), producer="test")))
    writer.append([Outgoing(topic=DIRECTORY.name, key=stuck.key, value=b"{not json"), stuck, after])
    projection = FlakyProjection(refuse="circle-stuck")
    with consuming(kafka_bootstrap, prefix, projection, retry_failed_after_s=0.2) as consumer:
        wait_for(lambda: "circle-after" in projection.circles, 60, what="the event after the poison projected")
        assert consumer.health.healthy and consumer.health.dead_lettered == 2
    letters = list(read_all(kafka_bootstrap, [dlq_topic(DIRECTORY.name)], topic_prefix=prefix))
    assert [r.value for r in letters] == [b"{not json", stuck.value]
    assert letters[1].headers["dlq.error"] == b"projection failed: ValueError: cannot project circle-stuck"
    assert letters[1].headers["dlq.consumer.group"] == f"{prefix}strict".encode()
    assert projection.circles == ["circle-after"]
    writer.close()


class HoldingProjection(FlakyProjection):
    """FlakyProjection whose transaction can span polls (messaging.consumer.CatchUp): held work shows in
    `circles` and `offsets` only at commit; `committed` counts the events of each real commit."""

    def __init__(self, refuse: str = "") -> None:
        super().__init__(refuse)
        self.pending: list[str] = []
        self.pending_offsets: dict[PartitionKey, int] = {}
        self.committed: list[int] = []

    def apply(self, events: Sequence[Delivered], offsets: dict[PartitionKey, OffsetRange]) -> None:
        assert not self.pending_offsets, "a one-poll transaction while one spanning polls is open"
        super().apply(events, offsets)
        if events:
            self.committed.append(len(events))

    def hold(self, events: Sequence[Delivered], offsets: dict[PartitionKey, OffsetRange]) -> None:
        try:
            for key, span in offsets.items():
                stored = self.pending_offsets.get(key, self.offsets.get(key))
                if stored is not None and stored != span.first:
                    raise StaleBatch(f"{key} held at {stored}, batch continues from {span.first}")
            if any(e.event.circle_id == self.refuse for e in events):  # type: ignore[attr-defined]
                raise ValueError(f"cannot project {self.refuse}")
        except Exception:
            self.rollback()
            raise
        self.pending.extend(e.event.circle_id for e in events)  # type: ignore[attr-defined]
        self.pending_offsets.update({key: span.next for key, span in offsets.items()})

    def commit(self, *, caught_up: bool = True) -> None:
        if self.pending_offsets:
            self.circles.extend(self.pending)
            self.offsets.update(self.pending_offsets)
            self.committed.append(len(self.pending))
        self.rollback()

    def rollback(self) -> None:
        self.pending, self.pending_offsets = [], {}


def test_far_behind_transactions_span_polls_and_a_poison_event_in_one_is_still_parked(
        kafka_bootstrap: str, unique_id: str) -> None:
    """Catch-up over a real broker, through the ledger's transactional appends (their commit markers count
    in the lag the loop sees): transactions span polls, the poison event in one is parked once after the
    whole transaction is rolled back and read again, and everything else is applied once, in order."""
    from reciprocity.messaging.consumer import CatchUp

    prefix = f"t.msghold.{unique_id}."
    ensure_topics(kafka_bootstrap, all_topics(prefix))
    ledger = EventLog(kafka_bootstrap, client_id="ledger", topic_prefix=prefix, transactional_id=prefix + "ledger")
    names = [str(n) for n in range(300)]
    names[170] = "poison"
    for start in range(0, len(names), 10):  # a transaction of ten each
        ledger.append([circle_formed(n) for n in names[start:start + 10]])
    ledger.close()

    projection = HoldingProjection(refuse="circle-poison")
    with consuming(kafka_bootstrap, prefix, projection, max_records=7,
                   catch_up=CatchUp(max_events=60, max_seconds=3600)) as consumer:  # type: ignore[arg-type]
        wait_for(lambda: len(projection.circles) == 299, 60, what="all but the poison event")
        ends = end_offsets(kafka_bootstrap, [DIRECTORY.name], topic_prefix=prefix)
        wait_for(lambda: all(projection.offsets.get(k, 0) == end for k, end in ends.items() if end), 30,
                 what="stored offsets at the end, past the poison event and the commit markers")
        assert consumer.health.healthy, consumer.health.reason()
        assert consumer.health.dead_lettered == 1
    assert sorted(projection.circles) == sorted(f"circle-{n}" for n in names if n != "poison")  # each once
    assert max(projection.committed) > 7  # some transactions held more than one poll
    (parked,) = read_all(kafka_bootstrap, [dlq_topic(DIRECTORY.name)], topic_prefix=prefix)
    assert decode(parked.value)[1].circle_id == "circle-poison"  # type: ignore[attr-defined]
