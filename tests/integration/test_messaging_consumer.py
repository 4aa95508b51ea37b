"""The consumer loop against a transactional writer (as the ledger is): commit markers take offsets
that no record is returned for, and the loop must neither stall on them nor show them as lag."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from reciprocity.contracts.envelope import wrap
from reciprocity.contracts.events import CircleFormed
from reciprocity.contracts.topics import DIRECTORY, all_topics
from reciprocity.messaging.consumer import Delivered, OffsetRange, PartitionKey, ProjectionConsumer, StaleBatch
from reciprocity.messaging.event_log import EventLog, Outgoing
from reciprocity.messaging.inspect import end_offsets
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


@contextmanager
def consuming(bootstrap: str, prefix: str, projection: StrictProjection) -> Iterator[ProjectionConsumer]:
    consumer = ProjectionConsumer(bootstrap, group_id="strict", topics=[DIRECTORY.name], projection=projection,
                                  dead_letters=EventLog(bootstrap, client_id="dlq", topic_prefix=prefix),
                                  topic_prefix=prefix)
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
