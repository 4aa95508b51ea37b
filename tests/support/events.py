"""Events for the tests, as their producers would write them, and a Feeder that hands them to a projection
the way ProjectionConsumer does (without Kafka).

- builders of the ledger's events (`circle`, `leads`, `member`, `capacity`, `pause`, `own_emails`,
  `Exchange` for an exchange's lifecycle, `organisation()` for notify's example organisation) and of
  balance's signals (`overextended`, `disconnected`, `cleared`);
- `envelope()` wraps one as its producer does (signals get balance's deterministic id); `append()` writes
  them to a real EventLog;
- `Feeder` keeps a log per partition and applies batches with the offset ranges they cover
  (`offset_ranges`, the one record-to-batch conversion of the tests).
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta

from reciprocity.balance.projection import BalanceProjection
from reciprocity.balance.projector import decode_for_projection
from reciprocity.contracts.envelope import Envelope, encode, wrap
from reciprocity.contracts.events import (
    AvailabilityChanged,
    CapacityDeclared,
    CircleFormed,
    CircleLeadsChanged,
    Event,
    ExchangeAcknowledged,
    ExchangeDisputed,
    ExchangeRecorded,
    ExchangeWithdrawn,
    MemberDisconnected,
    MemberOverextended,
    MemberRegistered,
    NotificationSettingsChanged,
    PolicyOverrides,
    SignalCleared,
    SignalEvent,
)
from reciprocity.contracts.ids import signal_event_id
from reciprocity.contracts.sealed import Sealed
from reciprocity.contracts.topics import DIRECTORY, EXCHANGES, SIGNALS
from reciprocity.messaging.consumer import Decoder, Delivered, OffsetRange, PartitionKey, Projection
from reciprocity.messaging.event_log import EventLog, Outgoing
from reciprocity.notify.rendering import signal_kind

# The end of the signals' default window (notify's tests).
WINDOW_END = date(2025, 5, 1)

# -- the ledger's events ---------------------------------------------------------------------------------


def circle(circle_id: str, name: str | None = None, parent: str | None = None,
           policy: PolicyOverrides | None = None) -> CircleFormed:
    return CircleFormed(circle_id=circle_id, name=name or circle_id.title(), parent=parent, policy=policy)


def leads(circle_id: str, *member_ids: str) -> CircleLeadsChanged:
    return CircleLeadsChanged(circle_id=circle_id, leads=list(member_ids))


def member(member_id: str, circles: Sequence[str] = (), name: str | None = None,
           email: str | None = None) -> MemberRegistered:
    # Clear values, as events written before sealing held them: projections read both alike, and these
    # tests need no key source. The sealing itself is tested in test_sealing.py and end to end.
    shown = name or member_id.split("-")[0].title()
    return MemberRegistered(member_id=member_id, name=Sealed.clear(shown, [member_id]),
                            email=Sealed.clear(email or f"{member_id}@example.org", [member_id]), circles=list(circles))


def capacity(member_id: str, hours: float | None) -> CapacityDeclared:
    return CapacityDeclared(member_id=member_id, weekly_hours=hours)


def pause(member_id: str, until: date | None = None) -> AvailabilityChanged:
    return AvailabilityChanged(member_id=member_id, status="paused", paused_until=until)


def own_emails(member_id: str, on: bool, *, daily_digest: bool = True) -> NotificationSettingsChanged:
    return NotificationSettingsChanged(member_id=member_id, own_alert_emails=on, daily_digest=daily_digest)


def organisation() -> list[Event]:
    """studio (lead zed) > design (lead bo); ops (lead bo). ana in design; cy in design and ops."""
    return [
        circle("studio", "Studio"), circle("design", "Design", parent="studio"), circle("ops", "Ops"),
        member("zed", ["studio"], name="Zed Root"), member("bo", ["design", "ops"], name="Bo Chen"),
        member("ana", ["design"], name="Ana Lima"), member("cy", ["design", "ops"], name="Cy Park"),
        # These tests are about what leads hear; ana and cy turned their own alert emails off (what a
        # member hears about herself is tested with `own_emails`).
        own_emails("ana", False), own_emails("cy", False),
        leads("studio", "zed"), leads("design", "bo"), leads("ops", "bo"),
    ]


class Exchange:
    """One exchange's facts, producing its lifecycle events."""

    def __init__(self, giver: str, receiver: str, minutes: int, day: date, kind: str = "help", *,
                 giver_circles: Sequence[str] = (), receiver_circles: Sequence[str] = (),
                 exchange_id: str | None = None, note: str = "", shared: bool = False) -> None:
        self.facts = {
            "exchange_id": exchange_id or f"x-{uuid.uuid4().hex[:12]}", "giver": giver, "receiver": receiver,
            "kind": kind, "minutes": minutes, "occurred_on": day, "giver_circles": list(giver_circles),
            "receiver_circles": list(receiver_circles),
        }  # fmt: skip
        self.note, self.shared = note, shared

    @property
    def id(self) -> str:
        return self.facts["exchange_id"]

    def recorded(self) -> ExchangeRecorded:
        return ExchangeRecorded(**self.facts, note=self._clear(self.note), recorded_by=self.facts["giver"],
                                shared=self.shared)

    def acknowledged(self, thanks: str = "", shared: bool = False) -> ExchangeAcknowledged:
        return ExchangeAcknowledged(**self.facts, by=self.facts["receiver"], thanks=self._clear(thanks), shared=shared)

    def disputed(self, reason: str = "did not happen") -> ExchangeDisputed:
        return ExchangeDisputed(**self.facts, by=self.facts["receiver"], reason=self._clear(reason))

    def _clear(self, text: str):  # type: ignore[no-untyped-def]
        return Sealed.clear(text, [self.facts["giver"], self.facts["receiver"]]) if text else None

    def withdrawn(self) -> ExchangeWithdrawn:
        return ExchangeWithdrawn(**self.facts, by=self.facts["giver"])


# -- balance's signals -------------------------------------------------------------------------------------


def overextended(member_id: str, circles: Sequence[str], *, window_end: date = WINDOW_END, given: int = 400,
                 received: int = 60, given_7: int = 200, capacity: int | None = None,
                 reason: str = "ratio") -> MemberOverextended:
    return MemberOverextended(
        # balance's window: the 28 days up to and including its end
        member_id=member_id, circles=list(circles), window_start=window_end - timedelta(days=27),
        window_end=window_end, reason=reason, given_minutes=given, received_minutes=received,  # type: ignore[arg-type]
        ratio=None if received == 0 else given / received, given_last_7_days=given_7,
        weekly_capacity_minutes=capacity,
    )


def disconnected(member_id: str, circles: Sequence[str], *, window_end: date = WINDOW_END, days: int | None = None,
                 last: date | None = None) -> MemberDisconnected:
    """As balance raises it: the window starts on the first silent day (the day after the last exchange, or
    the day of registration `days` before the end for a member who never exchanged)."""
    if days is None:
        days = (window_end - last).days if last else 23
    start = last + timedelta(days=1) if last else window_end - timedelta(days=days)
    return MemberDisconnected(member_id=member_id, circles=list(circles), window_start=start,
                              window_end=window_end, last_exchange_on=last, days_without_exchange=days)


def cleared(raised: Envelope, signal: SignalEvent, *, window_end: date | None = None,
            reason: str | None = "rebalanced") -> SignalCleared:
    kind = signal_kind(signal)
    return SignalCleared(member_id=signal.member_id, circles=list(signal.circles), window_start=signal.window_start,
                         window_end=window_end or signal.window_end, signal_kind=kind,  # type: ignore[arg-type]
                         raised_event_id=str(raised.event_id), reason=reason)  # type: ignore[arg-type]


# -- envelopes, the log ------------------------------------------------------------------------------------


def envelope(event: Event, occurred_at: datetime | None = None) -> Envelope:
    """Wrap as its producer would: signals get balance's deterministic id (member, kind, window start)."""
    occurred_at = occurred_at or datetime.now(UTC)
    if isinstance(event, SignalEvent) and not isinstance(event, SignalCleared):
        event_id = signal_event_id(event.member_id, signal_kind(event), event.window_start.isoformat())
        return wrap(event, producer="balance", event_id=event_id, occurred_at=occurred_at)
    if isinstance(event, SignalCleared):
        return wrap(event, producer="balance", occurred_at=occurred_at)
    return wrap(event, producer="ledger", occurred_at=occurred_at)


def at(days: float) -> datetime:
    """A fixed point in time `days` after the test epoch, for signals' occurred_at."""
    return datetime(2025, 5, 1, 9, 0, tzinfo=UTC) + timedelta(days=days)


def append(log: EventLog, events: Sequence[Event]) -> None:
    """Append to a real topic through the product's EventLog."""
    log.append([Outgoing.event(e.TOPIC, envelope(e)) for e in events])


def offset_ranges(delivered: Iterable[Delivered]) -> dict[PartitionKey, OffsetRange]:
    """The offset range a batch covers on each partition: from its first record to after its last.

    The tests' events are built already decoded, with no stored offset before them; the product's
    conversion of raw records (`reciprocity.messaging.consumer.to_batch`) is tested on its own."""
    spans: dict[PartitionKey, OffsetRange] = {}
    for d in delivered:
        key = (d.topic, d.partition)
        span = spans.get(key)
        spans[key] = OffsetRange(first=d.offset if span is None else span.first, next=d.offset + 1)
    return spans


class Feeder:
    """Feeds events to a projection as ProjectionConsumer would: a log per partition with offsets
    advancing, the projection's stored offsets loaded (as the consumer seeks on assignment), one `apply`
    per batch with the offset range it covers. `replay()` applies the whole log again from offset 0.

    Each event goes to `partition` when one is given (to `feed`, or to the Feeder for all), else by its
    key to one of its topic's partitions, as a producer spreads them.
    """

    PARTITIONS = {DIRECTORY.name: DIRECTORY.partitions, SIGNALS.name: SIGNALS.partitions,
                  EXCHANGES.name: EXCHANGES.partitions}

    def __init__(self, projection: Projection, *, partition: int | None = None, decoder: Decoder | None = None) -> None:
        self.projection = projection
        self.partition = partition
        # The records pass through bytes and the decoder its service's consumer uses (balance's reads its
        # recordings as checked structs), so the projection sees what it sees in production.
        if decoder is None and isinstance(projection, BalanceProjection):
            decoder = decode_for_projection
        self.decoder = decoder
        self.log: list[Delivered] = []
        # The offset the next record on each partition gets (a test may move it past records it applied itself).
        self.next: dict[PartitionKey, int] = {}

    def append(self, items: Iterable[Event | tuple[Envelope, Event]], *, partition: int | None = None,
               at: datetime | None = None) -> list[Delivered]:
        """Append to the log and return the records, without applying them; `at` is their occurred_at
        (now by default)."""
        delivered = []
        partition = self.partition if partition is None else partition
        for item in items:
            env, event = item if isinstance(item, tuple) else (envelope(item, at), item)
            topic = event.TOPIC
            key = (topic, partition if partition is not None else zlib.crc32(env.key.encode()) % self.PARTITIONS[topic])
            offset = self.next.get(key, 0)
            if self.decoder is not None:
                raw = encode(env)
                env, event = self.decoder(raw)
                delivered.append(Delivered(topic, key[1], offset, env, event, env.key.encode(), raw))
            else:
                delivered.append(Delivered(topic, key[1], offset, env, event))
            self.next[key] = offset + 1
        self.log.extend(delivered)
        return delivered

    def feed(self, items: Iterable[Event | tuple[Envelope, Event]], *, partition: int | None = None,
             at: datetime | None = None) -> list[Delivered]:
        """Append `items` and apply them as one batch."""
        delivered = self.append(items, partition=partition, at=at)
        self.apply_records(delivered)
        return delivered

    def apply_records(self, delivered: Iterable[Delivered]) -> None:
        delivered = list(delivered)
        spans = offset_ranges(delivered)
        self.projection.load_offsets(list(spans))
        self.projection.apply(delivered, spans)

    def replay(self) -> None:
        """Apply the whole log again from offset 0 (the stored offsets must have been rewound)."""
        by_partition: dict[PartitionKey, list[Delivered]] = {}
        for d in self.log:
            by_partition.setdefault((d.topic, d.partition), []).append(d)
        self.apply_records([d for records in by_partition.values() for d in sorted(records, key=lambda d: d.offset)])
