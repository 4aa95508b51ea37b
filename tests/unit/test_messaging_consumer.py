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
    still covered by the range, so the offset moves past it. A partition's records may come in several
    runs (the replay's reads interleave partitions), and a run may be empty."""
    from types import SimpleNamespace

    from reciprocity.contracts.envelope import encode
    from reciprocity.messaging.consumer import to_batch

    other = ("ledger.exchanges", 2)
    good = encode(delivered(0).envelope)
    records = [(KEY, [SimpleNamespace(offset=11, key=b"ada-l", value=good),
                      SimpleNamespace(offset=12, key=b"x", value=b"not an event")]),
               (other, [SimpleNamespace(offset=40, key=None, value=good)]),
               (KEY, [SimpleNamespace(offset=13, key=b"ada-l", value=good)]),
               (other, [])]
    unreadable: list[tuple[tuple[str, int], int, bytes]] = []
    events, ranges = to_batch(records, {KEY: 10}.get, lambda key, r, err: unreadable.append((key, r.offset, r.value)))
    assert [(e.topic, e.partition, e.offset) for e in events] == [(*KEY, 11), (*other, 40), (*KEY, 13)]
    assert events[0].raw_value == good and events[0].raw_key == b"ada-l"
    assert ranges == {KEY: OffsetRange(first=10, next=14), other: OffsetRange(first=40, next=41)}
    assert unreadable == [(KEY, 12, b"not an event")]


# --- transactions spanning polls while far behind (CatchUp) -----------------------------------------------

from types import SimpleNamespace  # noqa: E402

from kafka import TopicPartition  # noqa: E402
from reciprocity.contracts.envelope import encode  # noqa: E402
from reciprocity.messaging.consumer import CatchUp, _SeekToStored  # noqa: E402, F811

TP = TopicPartition("p.ledger.directory", 0)


class HoldingListProjection(ListProjection):
    """ListProjection with a transaction that can span polls: held events become `applied` (and `next`
    moves) only at commit; `commits` lists the stored offset after each real commit, `caught_up` what
    each commit call said (whether the catch-up ends there, also with nothing open)."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[int] = []
        self.pending_next: int | None = None
        self.commits: list[int] = []
        self.caught_up: list[tuple[int | None, bool]] = []
        self.fail_commit = 0  # commits that fail as an unreachable database would

    def apply(self, events, offsets) -> None:  # type: ignore[no-untyped-def]
        assert self.pending_next is None, "a one-poll transaction while one spanning polls is open"
        before = self.next
        super().apply(events, offsets)
        if self.next != before:  # not an idle confirmation
            self.commits.append(offsets[KEY].next)

    def hold(self, events, offsets) -> None:  # type: ignore[no-untyped-def]
        span = offsets[KEY]
        current = self.pending_next if self.pending_next is not None else self.next
        try:
            if current is not None and current != span.first:
                raise StaleBatch("moved")
            for e in events:
                if e.event.circle_id == "c-poison":
                    raise OverflowError("date value out of range")
        except Exception:
            self.rollback()
            raise
        self.pending += [e.offset for e in events]
        self.pending_next = span.next

    def commit(self, *, caught_up: bool = True) -> None:
        self.caught_up.append((self.pending_next, caught_up))
        if self.pending_next is None:
            return
        if self.fail_commit:
            self.fail_commit -= 1
            self.rollback()
            raise sqlalchemy.exc.OperationalError("COMMIT", {}, ConnectionRefusedError("connection refused"))
        self.applied += self.pending
        self.next = self.pending_next
        self.commits.append(self.next)
        self.rollback()

    def rollback(self) -> None:
        self.pending, self.pending_next = [], None


class FakeLog:
    """One partition of the broker as the consumer sees it: records from `position`, at most `max_records`
    a poll; the highwater the last fetch knew."""

    def __init__(self, circles: list[str], *, largest_poll: int = 10**9) -> None:
        self.records = [SimpleNamespace(offset=o, key=b"ada-l", value=encode(delivered(o, c).envelope))
                        for o, c in enumerate(circles)]
        self.at = 0
        self.paused: list = []
        self.largest_poll = largest_poll  # fewer records than asked for, as a fetch's size bounds them

    def append(self, circles: list[str]) -> None:
        self.records += [SimpleNamespace(offset=len(self.records) + i, key=b"ada-l",
                                         value=encode(delivered(len(self.records) + i, c).envelope))
                         for i, c in enumerate(circles)]

    def poll(self, timeout_ms, max_records):  # type: ignore[no-untyped-def]
        batch = self.records[self.at:self.at + min(max_records, self.largest_poll)]
        self.at += len(batch)
        return {TP: batch} if batch else {}

    def highwater(self, tp):  # type: ignore[no-untyped-def]
        return len(self.records)

    def assignment(self):  # type: ignore[no-untyped-def]
        return {TP}

    def position(self, tp):  # type: ignore[no-untyped-def]
        return self.at

    def seek(self, tp, offset) -> None:  # type: ignore[no-untyped-def]
        self.at = offset

    def seek_to_beginning(self, tp) -> None:  # type: ignore[no-untyped-def]
        self.at = 0

    def pause(self, tp) -> None:  # type: ignore[no-untyped-def]
        self.paused.append(tp)


def _catching_up(projection, log: FakeLog, *, max_events: int = 1000,  # type: ignore[no-untyped-def]
                 max_seconds: float = 3600):
    dlq = FakeDlq()
    consumer = ProjectionConsumer("127.0.0.1:9", group_id="balance", topics=["ledger.directory"],
                                  projection=projection, dead_letters=dlq, topic_prefix="p.",  # type: ignore[arg-type]
                                  max_records=10, catch_up=CatchUp(max_events=max_events, max_seconds=max_seconds))
    consumer._consumer = log  # type: ignore[assignment]
    consumer.health.connected = True
    return consumer, dlq


def _poll_until_idle(consumer, log: FakeLog, projection, seen: list | None = None) -> None:  # type: ignore[no-untyped-def]
    for _ in range(100):
        if consumer.poll_once(timeout_ms=0) == 0 and log.at == len(log.records):
            return
        if seen is not None:
            seen.append(projection.next)
    raise AssertionError("never idle")


def test_far_behind_one_transaction_spans_polls_up_to_its_size_and_commits_near_the_end() -> None:
    projection, log = HoldingListProjection(), FakeLog(["c-ok"] * 100)
    consumer, _ = _catching_up(projection, log, max_events=30)
    seen: list[int | None] = []
    _poll_until_idle(consumer, log, projection, seen)
    # Polls of 10: nothing visible until 30 were held; the last poll (nothing behind it) on its own.
    assert seen[:3] == [None, None, 30] and projection.commits == [30, 60, 90, 100]
    assert projection.applied == list(range(100)) and consumer.health.applied == 100
    # The size bounds go on catching up; the last poll goes on its own (`apply`), and every idle poll
    # after it says the catch-up has ended, with nothing open.
    assert projection.caught_up[:3] == [(30, False), (60, False), (90, False)]
    assert set(projection.caught_up[3:]) == {(None, True)}


def test_the_polls_that_take_the_rest_of_the_log_end_the_transaction_spanning_polls() -> None:
    """Less than a poll left behind the one held: the polls that take the rest are held too, and the
    transaction ends (caught up) with them, rather than the rest being applied a poll at a time after it."""
    projection, log = HoldingListProjection(), FakeLog(["c-ok"] * 95)
    consumer, _ = _catching_up(projection, log)
    _poll_until_idle(consumer, log, projection)
    assert projection.commits == [95] and projection.caught_up[0] == (95, True)
    assert projection.applied == list(range(95))
    # Polls smaller than asked for (a fetch's size): 9 left after 91, taken by the polls to 98 and 100.
    projection, log = HoldingListProjection(), FakeLog(["c-ok"] * 100, largest_poll=7)
    consumer, _ = _catching_up(projection, log)
    _poll_until_idle(consumer, log, projection)
    assert projection.commits == [100] and projection.caught_up[0] == (100, True)
    # A remainder of a tenth of a poll or less (commit markers, say) is not waited for.
    projection, log = HoldingListProjection(), FakeLog(["c-ok"] * 91)
    consumer, _ = _catching_up(projection, log)
    seen: list[int | None] = []
    _poll_until_idle(consumer, log, projection, seen)
    assert seen[8] == 90 and projection.commits == [90, 91] and projection.caught_up[0] == (90, True)


def test_records_appended_once_the_end_is_in_sight_do_not_keep_the_transaction_open() -> None:
    projection, log = HoldingListProjection(), FakeLog(["c-ok"] * 95)
    consumer, _ = _catching_up(projection, log)
    for _ in range(9):  # to 90: 5 left, the end in sight
        consumer.poll_once(timeout_ms=0)
    assert projection.commits == [] and projection.pending_next == 90
    log.append(["c-ok"] * 8)  # a producer goes on: 13 behind
    consumer.poll_once(timeout_ms=0)  # takes 90-100: more than was left at 90, so the transaction ends
    assert projection.commits == [100] and projection.caught_up[0] == (100, True)
    _poll_until_idle(consumer, log, projection)
    assert projection.commits == [100, 103] and projection.applied == list(range(103))


def test_collection_stays_paused_from_a_transactions_first_poll_to_its_end() -> None:
    """Resumed between the polls of a transaction spanning polls, collection would walk all it holds at
    the next allocation; it resumes when the transaction ends, and only if it was running before."""
    import gc

    projection, log = HoldingListProjection(), FakeLog(["c-ok"] * 95)
    consumer, _ = _catching_up(projection, log)
    assert gc.isenabled()
    try:
        between: list[bool] = []
        for _ in range(9):
            consumer.poll_once(timeout_ms=0)
            between.append(gc.isenabled())
        assert projection.commits == [] and between == [False] * 9
        _poll_until_idle(consumer, log, projection)
        assert projection.commits == [95] and gc.isenabled()
        gc.disable()  # someone else's pause is left alone
        log.append(["c-ok"] * 30)
        _poll_until_idle(consumer, log, projection)
        assert projection.commits[-1] == 125 and not gc.isenabled()
    finally:
        gc.enable()


def test_a_transaction_spanning_polls_is_committed_at_its_time_bound() -> None:
    projection, log = HoldingListProjection(), FakeLog(["c-ok"] * 40)
    consumer, _ = _catching_up(projection, log, max_seconds=0.0)  # open "too long" as soon as it holds a poll
    _poll_until_idle(consumer, log, projection)
    assert projection.commits == [10, 20, 30, 40]


def test_caught_up_every_poll_is_committed_at_once() -> None:
    projection, log = HoldingListProjection(), FakeLog(["c-ok"] * 25)
    consumer, _ = _catching_up(projection, log)
    _poll_until_idle(consumer, log, projection)
    assert projection.commits == [25]  # 0-25 in one transaction, the poll that took the last 5 included
    for end in (28, 31, 34):
        log.append(["c-ok"] * 3)
        consumer.poll_once(timeout_ms=0)
        assert projection.next == end and projection.pending_next is None
    assert projection.commits == [25, 28, 31, 34]


def test_a_poison_event_in_a_later_poll_rolls_the_transaction_back_and_is_parked_on_a_re_read() -> None:
    projection, log = HoldingListProjection(), FakeLog(["c-poison" if o == 37 else "c-ok" for o in range(60)])
    consumer, dlq = _catching_up(projection, log)
    _poll_until_idle(consumer, log, projection)
    # Offsets 0-30 were held when 30-40 failed: all rolled back, read again from the stored offset (none:
    # the beginning), a transaction per poll up to 40, where the poison was isolated and parked once.
    assert projection.applied == [o for o in range(60) if o != 37] and projection.next == 60
    assert projection.commits[:3] == [10, 20, 30] and 37 in projection.commits
    assert [r.value for r in dlq.appended] == [log.records[37].value]
    assert consumer.health.healthy and consumer.health.dead_lettered == 1
    assert consumer._per_poll_below == {}  # past where it failed: transactions may span polls again
    assert projection.commits[-2:] == [40, 60]  # 40-60 held as one


def test_a_failed_commit_rolls_back_and_the_partition_is_read_again_from_the_stored_offset() -> None:
    projection, log = HoldingListProjection(), FakeLog(["c-ok"] * 50)
    consumer, _ = _catching_up(projection, log, max_events=20)
    consumer.poll_once(timeout_ms=0)
    consumer.poll_once(timeout_ms=0)
    assert projection.commits == [20]
    projection.fail_commit = 1
    consumer.poll_once(timeout_ms=0)
    consumer.poll_once(timeout_ms=0)  # 20-40 held; its commit fails
    assert projection.next == 20 and log.at == 20  # sought back to what was committed
    _poll_until_idle(consumer, log, projection)
    assert projection.applied == list(range(50))  # nothing lost, nothing twice
    assert consumer.health.healthy


def test_a_revocation_commits_the_transaction_spanning_polls() -> None:
    projection, log = HoldingListProjection(), FakeLog(["c-ok"] * 50)
    consumer, _ = _catching_up(projection, log)
    consumer.poll_once(timeout_ms=0)
    consumer.poll_once(timeout_ms=0)
    assert projection.next is None and projection.pending == list(range(20))
    _SeekToStored(consumer).on_partitions_revoked([TP])
    assert projection.next == 20 and projection.applied == list(range(20)) and consumer._held == {}
    assert projection.caught_up == [(20, True)]  # what was set aside for the catch-up is put back


def test_catch_up_needs_a_projection_that_can_hold_a_transaction() -> None:
    with pytest.raises(TypeError):
        ProjectionConsumer("127.0.0.1:9", group_id="g", topics=["ledger.directory"], projection=ListProjection(),
                           dead_letters=None, catch_up=CatchUp(max_events=100))  # type: ignore[arg-type]
