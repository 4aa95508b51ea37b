"""The consumer loop every projection runs on: offsets live with the data.

The projection stores (topic, partition, next offset) in the same database transaction as its rows.
On assignment the loop seeks to those stored offsets, so a crash at any point neither loses nor
double-applies an event. Each polled batch goes to the projection at once (set-based upserts in one
transaction).

Poison is parked, not fatal (reciprocity.messaging.poison): a record that is not a valid event, or a
valid event whose projection fails on its own when its batch is applied again piece by piece, goes to
`<topic>.dlq` with headers saying where it came from, why, and which consumer parked it; the rest of
the batch and the partition go on. Only infrastructure failures (the database or the broker out of
reach) stop a partition, which is retried from its stored offset.

Catching up (a new process, a replay, a long outage) is where a projection spends most of its time, and
a commit per poll makes it pay the database's per-commit cost (WAL appends and checkpoints that grow
with the size of the indexes, not of the batch) every few thousand events. With `CatchUp`, while the
log is far ahead, one transaction spans several polls: each poll is applied into it and freed, and the
transaction is committed with its offsets at a size or time bound, or when the consumer has read to the
end of the log (the polls that take what was left are held too; then a commit per poll again, so a
new event shows within one poll). A failure anywhere in such a transaction rolls all of it back; the
partitions are re-read from their stored offsets, one transaction per poll, until past where it failed
(where poison is isolated as above).
"""

import gc
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from reciprocity.contracts.envelope import ContractError, Envelope, decode, encode
from reciprocity.contracts.events import Event
from reciprocity.contracts.topics import dlq_topic

from .event_log import BrokerUnavailable, EventLog, Outgoing
from .poison import PARKED, apply_isolating_poison, describe_failure, dlq_headers, is_infrastructure_failure
from .tracking import OffsetRange, PartitionKey, StaleBatch

__all__ = ["CatchUp", "Decoder", "Delivered", "HoldingProjection", "OffsetRange", "PartitionKey", "Projection",
           "ProjectionConsumer", "RawBytes", "StaleBatch", "to_batch"]

log = logging.getLogger(__name__)

# How often an idle loop confirms its positions with the projection (see _settle_idle_positions).
CONFIRM_IDLE_POSITIONS_S = 5.0


# What turns a record's value into (envelope, event), raising ContractError for one that is not an event:
# `decode`, or a projection's own (balance's takes its hot event types as checked structs, which stand in
# for the envelope and the event: contracts.fastcodec.checked_decoder).
Decoder = Callable[[bytes], tuple[Any, Any]]


class Delivered(NamedTuple):
    """One record of a batch, decoded. A tuple: made once for every record, it costs a third of a frozen
    dataclass."""

    topic: str  # logical name
    partition: int
    offset: int
    envelope: Envelope  # or what the projection's Decoder hands back for it
    event: Event
    # The record as it was read, so a poison event is parked byte for byte (a redrive re-appends it).
    raw_key: bytes | None = None
    raw_value: bytes | None = None


class RawBytes(Protocol):
    """A record as Kafka returns it: kafka-python's ConsumerRecord or inspect.RawRecord."""

    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes: ...


def to_batch(
    runs: Iterable[tuple[PartitionKey, Sequence[RawBytes]]],
    stored_next: Callable[[PartitionKey], int | None],
    unreadable: Callable[[PartitionKey, RawBytes, ContractError], None],
    decoder: Decoder = decode,
) -> tuple[list[Delivered], dict[PartitionKey, OffsetRange]]:
    """The one conversion of raw records into a projection's batch: the events decoded, and the offset
    range the batch covers on each partition. `runs`: the records by partition, in offset order (as a
    poll returns them; a partition may have several runs, in order), so that the work per partition is
    done once per run, not once per record.

    A range starts where the stored offset stands (`stored_next`, None if unknown: then at the first
    record), not at the first record: a transaction's commit marker may sit between them, and the
    projection's compare-and-set must see no gap. A record that is not a valid event is handed to
    `unreadable` (to be dead-lettered) and left out of the events, its offset still inside the range."""
    events: list[Delivered] = []
    append = events.append
    firsts: dict[PartitionKey, int] = {}
    nexts: dict[PartitionKey, int] = {}
    for key, records in runs:
        if not records:
            continue
        if key not in firsts:
            stored = stored_next(key)
            firsts[key] = records[0].offset if stored is None else min(stored, records[0].offset)
        nexts[key] = records[-1].offset + 1
        topic, partition = key
        for record in records:
            try:
                envelope, event = decoder(record.value)
            except ContractError as err:
                unreadable(key, record, err)
                continue
            append(Delivered(topic, partition, record.offset, envelope, event, record.key, record.value))
    return events, {key: OffsetRange(first=first, next=nexts[key]) for key, first in firsts.items()}


class Projection(Protocol):
    def load_offsets(self, partitions: Sequence[PartitionKey]) -> dict[PartitionKey, int]:
        """Next offset to read for each partition that has one stored."""
        ...

    def apply(self, events: Sequence[Delivered], offsets: dict[PartitionKey, OffsetRange]) -> None:
        """Apply `events` and move each partition's stored offset from `first` to `next`, in one
        transaction (reciprocity.messaging.tracking.OffsetStore.advance). Raise StaleBatch (and change
        nothing) if a stored offset is not `first`."""
        ...


@runtime_checkable
class HoldingProjection(Projection, Protocol):
    """A projection whose transaction can span several polls (see CatchUp)."""

    def hold(self, events: Sequence[Delivered], offsets: dict[PartitionKey, OffsetRange]) -> None:
        """Like `apply`, but into a transaction left open (begun if none is), committed by `commit`. If it
        raises, everything held since the last commit is rolled back."""
        ...

    def commit(self, *, caught_up: bool = True) -> None:
        """Commit the open transaction, if any (rolled back if that fails, and the error raised); what
        follows a commit (publishing signals) runs after it. `caught_up=False`: a size or time bound while
        still far behind (more transactions spanning polls follow); otherwise the catch-up has ended (near
        the end of the log, a rebalance), also when no transaction is open: what the projection set aside
        for the catch-up only (indexes, say) is put back."""
        ...

    def rollback(self) -> None:
        """Roll back the open transaction, if any."""
        ...


@dataclass(frozen=True)
class CatchUp:
    """While the log is at least a full poll ahead, hold one transaction across polls until it holds
    `max_events` events or has been open `max_seconds` (it holds the database's write lock that long:
    SQLite's other writers wait, within their busy timeout)."""

    max_events: int
    max_seconds: float = 20.0


@dataclass
class ConsumerHealth:
    connected: bool = False
    last_poll_at: float | None = None
    failed_partitions: dict[str, str] = field(default_factory=dict)
    dead_lettered: int = 0  # records this process parked since it started (unreadable or unprojectable)
    applied: int = 0
    loop_error: str | None = None  # why the loop last had to start over, until it polls again

    @property
    def healthy(self) -> bool:
        return self.connected and not self.failed_partitions and self.loop_error is None

    def reason(self) -> str | None:
        if self.loop_error is not None:
            return f"consumer restarting after: {self.loop_error}"
        if not self.connected:
            return "not connected to Kafka"
        if self.failed_partitions:
            return "; ".join(f"{p} stopped: {e}" for p, e in sorted(self.failed_partitions.items()))
        return None

    def summary(self) -> dict[str, object]:
        """For /health: what is stopped and why, and how many records were parked (which is no failure:
        the operator sees them on /ops and in `reciprocity status`)."""
        return {"stopped_partitions": dict(sorted(self.failed_partitions.items())),
                "parked_since_start": self.dead_lettered}


class _CollectionPause:
    """Automatic garbage collection paused while a batch is decoded and applied, and from the first poll of
    a transaction spanning polls to its end.

    A batch allocates some ten tracked containers per record (kafka records, envelopes, events,
    projection deltas) that all live until it is applied, so the generational collector would scan
    them over and over (measured: it doubled the projection's cost per event) to find no garbage:
    freeing is by reference counting. Resumed between polls, the first allocation after it set off a
    collection (the counts go on while paused) walking all a held transaction holds: 0.5 s of a profiled
    300,000-event catch-up. Cycles made meanwhile wait for the next automatic collection. Process-wide;
    resumed only if it was running when paused (someone else may have paused it)."""

    def __init__(self) -> None:
        self._paused = False

    def pause(self) -> None:
        if not self._paused and gc.isenabled():
            gc.disable()
            self._paused = True

    def resume(self) -> None:
        if self._paused:
            gc.enable()
            self._paused = False


class ProjectionConsumer:
    def __init__(
        self,
        bootstrap_servers: str,
        *,
        group_id: str,
        topics: Sequence[str],
        projection: Projection,
        dead_letters: EventLog,
        topic_prefix: str = "",
        client_id: str = "reciprocity",
        max_records: int = 5000,
        retry_failed_after_s: float = 15.0,
        catch_up: CatchUp | None = None,
        decoder: Decoder = decode,
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._decoder = decoder
        self._group_id = topic_prefix + group_id
        self._topics = list(topics)
        self._prefix = topic_prefix
        self._projection = projection
        self._dead_letters = dead_letters
        self._client_id = client_id
        self._max_records = max_records
        self._retry_after_s = retry_failed_after_s
        self._consumer: KafkaConsumer | None = None
        self._paused_since: dict[TopicPartition, float] = {}
        self._stored_next: dict[TopicPartition, int] = {}  # what the projection has, as far as we know
        # Records sent to the DLQ whose batch is not committed yet: a retried batch must not send them again.
        self._dead_lettered: set[tuple[TopicPartition, int]] = set()
        self._confirmed_at = 0.0  # when idle positions were last confirmed with the projection
        self.health = ConsumerHealth()
        self._catch_up = catch_up
        self._holding: HoldingProjection | None = None
        if catch_up is not None:
            if not isinstance(projection, HoldingProjection):
                raise TypeError(f"{type(projection).__name__} cannot hold a transaction across polls")
            self._holding = projection
        # The open transaction spanning polls: the next offset it holds per partition, its events, since when.
        self._held: dict[TopicPartition, int] = {}
        self._held_events = 0
        self._held_since = 0.0
        self._collection = _CollectionPause()
        # Offsets left behind the held polls since the end of the log came in sight (see _hold).
        self._left_at_end: int | None = None
        # After such a transaction failed: one transaction per poll below these offsets (poison isolated).
        self._per_poll_below: dict[TopicPartition, int] = {}

    # --- names ---------------------------------------------------------------------------------

    def _logical(self, physical: str) -> str:
        return physical[len(self._prefix):] if physical.startswith(self._prefix) else physical

    def _tp(self, key: PartitionKey) -> TopicPartition:
        return TopicPartition(self._prefix + key[0], key[1])

    def _key(self, tp: TopicPartition) -> PartitionKey:
        return (self._logical(tp.topic), tp.partition)

    # --- loop ----------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set. Survives an unreachable broker, and anything else that breaks the
        loop (an unreachable database while seeking, say), by starting over: a thread that died would
        leave the service up but projecting nothing."""
        while not stop.is_set():
            try:
                self._consumer = self._connect()
                self.health.connected = True
                while not stop.is_set():
                    self.poll_once(timeout_ms=500)
                    self.health.loop_error = None
            except (KafkaError, BrokerUnavailable) as err:
                self.health.connected = False
                log.warning("consumer %s lost Kafka (%r); retrying", self._group_id, err)
                stop.wait(2.0)
            except Exception as err:
                self.health.loop_error = repr(err)[:500]
                log.exception("consumer %s failed; starting over in 5 s", self._group_id)
                stop.wait(5.0)
            finally:
                self._drop_held()  # at a poll's boundary either way; rolled back, it is read again
                self._collection.resume()
                if self._consumer is not None:
                    self._consumer.close(autocommit=False)
                    self._consumer = None
        self.health.connected = False

    def _connect(self) -> KafkaConsumer:
        consumer = KafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=self._group_id,
            client_id=self._client_id,
            enable_auto_commit=False,  # offsets live in the projection's database
            auto_offset_reset="earliest",
            isolation_level="read_committed",  # the ledger appends in transactions
            max_poll_records=self._max_records,
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            reconnect_backoff_max_ms=2000,
            # A crashed member's partitions wait for its session to expire (45 s by default) before
            # anyone else takes them; 10 s is still far above a healthy poll interval.
            session_timeout_ms=10_000,
            heartbeat_interval_ms=3_000,
            # A group joined while the broker's metadata did not yet list a new topic's partitions (just
            # created, seen in CI) assigns nothing, and only a metadata change triggers a new join: at
            # the default 5 minutes' age the projection would sit idle that long. One small request a
            # consumer every 15 s bounds it.
            metadata_max_age_ms=15_000,
        )
        consumer.subscribe([self._prefix + t for t in self._topics], listener=_SeekToStored(self))
        return consumer

    def poll_once(self, timeout_ms: int) -> int:
        assert self._consumer is not None
        self._retry_paused()
        # Within a transaction spanning polls (a catch-up: the broker has records waiting, the wait is
        # short) collection stays paused through the poll too: its fetched records would set off full
        # collections that walk everything the transaction holds (~5% of a catch-up's CPU, 300,000
        # events). Outside one the wait in poll() keeps collection running for the service's other threads.
        polled = self._consumer.poll(timeout_ms=timeout_ms, max_records=self._max_records)
        self.health.last_poll_at = time.time()
        if not polled:
            if self._holding is not None:  # at the end of what the broker had: the catch-up, if any, ends
                self._commit_held()
            self._collection_after_poll()
            self._settle_idle_positions()
            return 0
        self._collection.pause()
        try:
            return self._decode_and_apply(polled)
        finally:
            self._collection_after_poll()

    def _collection_after_poll(self) -> None:
        if not self._held:  # a transaction spanning polls keeps it paused until it ends
            self._collection.resume()

    def _decode_and_apply(self, polled: dict[TopicPartition, list[ConsumerRecord]]) -> int:
        def stored_next(key: PartitionKey) -> int | None:
            return self._stored_next.get(self._tp(key))

        def unreadable(key: PartitionKey, record: RawBytes, err: ContractError) -> None:
            tp = self._tp(key)
            if (tp, record.offset) not in self._dead_lettered:  # once, however often the batch is retried
                self._dead_letter(key, record.offset, record.key, record.value, str(err), "unreadable")
                self._dead_lettered.add((tp, record.offset))

        events, offsets = to_batch(((self._key(tp), records) for tp, records in polled.items()),
                                   stored_next, unreadable, self._decoder)
        if self._held and self._rereading(offsets):  # a partition where a held transaction failed
            self._commit_held()
        if self._held or self._may_hold(offsets):
            self._hold(events, offsets)
        else:
            self._apply(events, offsets)
        return len(events)

    # --- transactions spanning polls (CatchUp) ---------------------------------------------------

    def _behind(self, offsets: dict[PartitionKey, OffsetRange]) -> int:
        """Records the broker holds beyond this batch, on its partitions and the held ones (as the last
        fetch responses knew it; commit markers count too, which is why "far" is a full poll)."""
        assert self._consumer is not None
        ends = {self._tp(key): span.next for key, span in offsets.items()}
        for tp, held_next in self._held.items():
            ends.setdefault(tp, held_next)
        behind = 0
        for tp, end in ends.items():
            highwater = self._consumer.highwater(tp) if tp in self._consumer.assignment() else None
            if highwater is not None:
                behind += max(0, highwater - end)
        return behind

    def _may_hold(self, offsets: dict[PartitionKey, OffsetRange]) -> bool:
        """Begin a transaction spanning polls: far behind, and not re-reading where one failed."""
        if self._catch_up is None or not offsets or self._rereading(offsets):
            return False
        return self._behind(offsets) >= self._max_records

    def _rereading(self, offsets: dict[PartitionKey, OffsetRange]) -> bool:
        return any(span.first < self._per_poll_below.get(self._tp(key), -1) for key, span in offsets.items())

    def _hold(self, events: list[Delivered], offsets: dict[PartitionKey, OffsetRange]) -> None:
        assert self._holding is not None and self._catch_up is not None
        try:
            self._holding.hold(events, offsets)
        except Exception as err:
            self._abandon_held(offsets, err)
            return
        if not self._held:
            self._held_since = time.monotonic()
        for key, span in offsets.items():
            tp = self._tp(key)
            self._held[tp] = self._stored_next[tp] = span.next
        self._held_events += len(events)
        # Less than a poll behind: the end of the log is in sight. The polls that take what was left then are
        # held too (a poll may bring less than a poll's worth: the broker's fetch sizes), so the catch-up does
        # not end with thousands of events applied a poll at a time after its commit, each costing more (the
        # dropped indexes built again, the alert policy judging every poll): the last 7,511 events of a
        # 300,000-event catch-up took 1 s so. Records appended meanwhile wait for the commit, not for more
        # polls. A tenth of a poll or less left is not worth another poll, which may wait for records in
        # vain (commit markers count among the offsets): the commit is now.
        behind = self._behind(offsets)
        caught_up = behind < self._max_records
        ends_here = False
        if not caught_up:
            self._left_at_end = None
        else:
            taken = sum(span.next - span.first for span in offsets.values())
            self._left_at_end = behind if self._left_at_end is None else self._left_at_end - taken
            ends_here = min(behind, self._left_at_end) <= self._max_records // 10
        if (ends_here or self._held_events >= self._catch_up.max_events
                or time.monotonic() - self._held_since >= self._catch_up.max_seconds):
            self._commit_held(caught_up=caught_up)

    def _commit_held(self, *, caught_up: bool = True) -> None:
        assert self._holding is not None
        try:
            self._holding.commit(caught_up=caught_up)
        except Exception as err:
            self._abandon_held({}, err)
            return
        self.health.applied += self._held_events
        self._forget_dead_letters(self._held)
        self._forget_per_poll(self._held)
        self._held, self._held_events, self._left_at_end = {}, 0, None

    def _abandon_held(self, offsets: dict[PartitionKey, OffsetRange], err: Exception) -> None:
        """A transaction spanning polls failed: roll all of it back, and read its partitions again from the
        stored offsets, one transaction per poll up to where it failed (so a poison event is isolated and
        parked, and a stopped partition retried, as without CatchUp)."""
        assert self._holding is not None
        failed_at = dict(self._held)
        for key, span in offsets.items():
            tp = self._tp(key)
            failed_at[tp] = max(failed_at.get(tp, 0), span.next)
        self._drop_held()
        for tp, below in failed_at.items():
            self._per_poll_below[tp] = max(below, self._per_poll_below.get(tp, 0))
        log.warning("a transaction spanning polls failed (%s); rolled back, reading %s again from the stored "
                    "offsets", describe_failure(err), ", ".join(sorted(_label(self._key(tp)) for tp in failed_at)))
        keys = sorted(self._key(tp) for tp in failed_at)
        try:
            self._seek_to_stored(keys)
        except Exception as seek_err:  # the database went away: retry as stopped partitions
            for key in keys:
                self._stop_partition(key, seek_err)

    def _drop_held(self) -> None:
        if self._holding is not None:
            try:
                self._holding.rollback()
            except Exception as err:  # the connection is gone: so is its transaction
                log.warning("rolling back a transaction spanning polls failed: %r", err)
        self._held, self._held_events, self._left_at_end = {}, 0, None

    def _forget_per_poll(self, committed: dict[TopicPartition, int]) -> None:
        for tp, next_offset in committed.items():
            if next_offset >= self._per_poll_below.get(tp, math.inf):
                del self._per_poll_below[tp]

    def _apply(self, events: list[Delivered], offsets: dict[PartitionKey, OffsetRange]) -> None:
        try:
            self._projection.apply(events, offsets)
            self._committed(offsets, len(events))
            return
        except StaleBatch as err:
            self._stale(list(offsets), err)
            return
        except Exception as err:
            if is_infrastructure_failure(err):
                for key in offsets:
                    self._stop_partition(key, err)
                return
            log.warning("batch failed (%s); looking for the event at fault, partition by partition",
                        describe_failure(err))
        # Parks the events at fault (each failing on its own), so the rest and the other partitions go on.
        for key, span in offsets.items():
            mine = [e for e in events if (e.topic, e.partition) == key]
            try:
                apply_isolating_poison(self._projection, key, mine, span, self._park)
            except StaleBatch as err:
                self._stale([key], err)
            except Exception as err:  # the database or the broker went away meanwhile: stop and retry
                self._stop_partition(key, err)
            else:
                self._committed({key: span}, len(mine))

    def _committed(self, offsets: dict[PartitionKey, OffsetRange], applied: int) -> None:
        self.health.applied += applied
        for key, span in offsets.items():
            self._stored_next[self._tp(key)] = span.next
        committed = {self._tp(key): span.next for key, span in offsets.items()}
        self._forget_dead_letters(committed)
        if self._per_poll_below:
            self._forget_per_poll(committed)

    def _stale(self, keys: list[PartitionKey], err: StaleBatch) -> None:
        log.warning("%s; seeking back to the stored offsets", err)
        try:
            self._seek_to_stored(keys)
        except Exception as seek_err:  # the database went away meanwhile: retry as a stopped partition
            for key in keys:
                self._stop_partition(key, seek_err)

    def _park(self, event: Delivered, err: BaseException) -> None:
        """Park a valid event whose projection fails on its own (once per offset, however often its
        batch is retried before the offset moves past it)."""
        tp = self._tp((event.topic, event.partition))
        if (tp, event.offset) in self._dead_lettered:
            return
        value = event.raw_value if event.raw_value is not None else encode(event.envelope)
        key = event.raw_key if event.raw_value is not None else event.envelope.key.encode()
        self._dead_letter((event.topic, event.partition), event.offset, key, value,
                          f"projection failed: {describe_failure(err)}", "unprojectable")
        self._dead_lettered.add((tp, event.offset))

    def _settle_idle_positions(self) -> None:
        """When idle, move stored offsets past what the consumer skipped without returning it: the
        commit marker a transaction leaves after its records. Otherwise every partition the ledger
        wrote to would show a lag of 1 at rest.

        And every few seconds, confirm each partition's position with the projection even when nothing
        moved (an empty span): a projection can make positions stale with no record arriving (balance's
        replay switches to a generation that may lack what the old one got meanwhile), and only an
        applied batch tells this loop so (StaleBatch), which an idle partition would never send."""
        assert self._consumer is not None
        now = time.monotonic()
        confirm = now - self._confirmed_at >= CONFIRM_IDLE_POSITIONS_S
        spans: dict[PartitionKey, OffsetRange] = {}
        for tp, stored in self._stored_next.items():
            if tp in self._paused_since or tp not in self._consumer.assignment():
                continue
            position = self._consumer.position(tp)
            if position is not None and (position > stored or confirm):
                spans[self._key(tp)] = OffsetRange(first=stored, next=max(position, stored))
        if confirm:
            self._confirmed_at = now
        if spans:
            self._apply([], spans)

    def _stop_partition(self, key: PartitionKey, err: Exception) -> None:
        """Pause the partition; where it resumes from is read when it does (the database may be what failed)."""
        assert self._consumer is not None
        log.error("projection of %s failed; partition stopped: %r", key, err, exc_info=err)
        tp = self._tp(key)
        self.health.failed_partitions[_label(key)] = describe_failure(err)
        self._consumer.pause(tp)
        self._paused_since[tp] = time.monotonic()

    def _retry_paused(self) -> None:
        """Resume stopped partitions now and then, from their stored offsets: a failure may have been
        passing (a locked or restarting database)."""
        assert self._consumer is not None
        now = time.monotonic()
        due = [tp for tp, since in self._paused_since.items() if now - since >= self._retry_after_s]
        if not due:
            return
        try:
            self._seek_to_stored([self._key(tp) for tp in due])
        except Exception as err:
            log.warning("cannot read the stored offsets to resume %s (%r); trying again later", due, err)
            for tp in due:
                self._paused_since[tp] = now
            return
        for tp in due:
            del self._paused_since[tp]
            self.health.failed_partitions.pop(_label(self._key(tp)), None)
            self._consumer.resume(tp)

    def _forget_dead_letters(self, below: Mapping[TopicPartition, int | float]) -> None:
        """Forget the dead letters of each partition in `below` at offsets below its value (committed)."""
        if self._dead_lettered:
            self._dead_lettered = {(tp, o) for tp, o in self._dead_lettered if o >= below.get(tp, -1)}

    def _seek_to_stored(self, keys: Sequence[PartitionKey]) -> None:
        assert self._consumer is not None
        stored = self._projection.load_offsets(keys)
        assigned = self._consumer.assignment()
        for key in keys:
            tp = self._tp(key)
            if tp not in assigned:
                continue
            if key in stored:
                self._consumer.seek(tp, stored[key])
                self._stored_next[tp] = stored[key]
            else:
                self._consumer.seek_to_beginning(tp)
                self._stored_next.pop(tp, None)

    def _dead_letter(self, key: PartitionKey, offset: int, record_key: bytes | None, value: bytes | None,
                     error: str, why: str) -> None:
        topic, partition = key
        log.warning("parking %s[%d]@%d in %s: %s", topic, partition, offset, dlq_topic(topic), error)
        self._dead_letters.append([
            Outgoing(topic=dlq_topic(topic), key=record_key, value=value or b"",
                     headers=dlq_headers(topic, partition, offset, error, self._group_id))
        ])
        self.health.dead_lettered += 1
        PARKED.labels(topic, self._group_id, why).inc()


def _label(key: PartitionKey) -> str:
    return f"{key[0]}[{key[1]}]"


class _SeekToStored(ConsumerRebalanceListener):  # type: ignore[misc]  # kafka-python ships no type information
    """On assignment, read the stored offsets and seek: quick, as the client's I/O loop runs it."""

    def __init__(self, owner: ProjectionConsumer) -> None:
        self._owner = owner

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # A transaction spanning polls ends at a poll's boundary: committed here, before the partitions'
        # next owner reads their stored offsets (if it fails, the next owner reads what was committed).
        # A partition stopped here is someone else's to retry now, so it no longer makes this process
        # unhealthy.
        owner = self._owner
        if owner._holding is not None:
            owner._commit_held()
        for tp in revoked:
            owner._per_poll_below.pop(tp, None)
            owner._paused_since.pop(tp, None)
            owner._stored_next.pop(tp, None)
            owner.health.failed_partitions.pop(_label(owner._key(tp)), None)
        owner._forget_dead_letters(dict.fromkeys(revoked, math.inf))

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        owner = self._owner
        try:
            owner._seek_to_stored([owner._key(tp) for tp in assigned])
        except Exception as err:  # the database is unreachable: hold the partitions until it answers
            for tp in assigned:
                owner._stop_partition(owner._key(tp), err)
