"""Helpers for notify's tests and demos: build directory and signal events, wrap them as balance and the
ledger would, and feed them to a projection the way the consumer does (without Kafka)."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta

from reciprocity.contracts.envelope import Envelope, wrap
from reciprocity.contracts.events import (
    AvailabilityChanged,
    CircleFormed,
    CircleLeadsChanged,
    Event,
    MemberDisconnected,
    MemberOverextended,
    MemberRegistered,
    NotificationSettingsChanged,
    SignalCleared,
    SignalEvent,
)
from reciprocity.contracts.ids import signal_event_id
from reciprocity.contracts.sealed import Sealed
from reciprocity.contracts.topics import DIRECTORY, EXCHANGES, SIGNALS
from reciprocity.messaging.consumer import Delivered, OffsetRange, PartitionKey, Projection

from .rendering import signal_kind

WINDOW_END = date(2025, 5, 1)


def circle(circle_id: str, name: str | None = None, parent: str | None = None) -> CircleFormed:
    return CircleFormed(circle_id=circle_id, name=name or circle_id.title(), parent=parent)


def leads(circle_id: str, *member_ids: str) -> CircleLeadsChanged:
    return CircleLeadsChanged(circle_id=circle_id, leads=list(member_ids))


def member(member_id: str, circles: Sequence[str] = (), name: str | None = None,
           email: str | None = None) -> MemberRegistered:
    # Clear values (as before sealing): notify's tests need no key source.
    shown = name or member_id.split("-")[0].title()
    return MemberRegistered(member_id=member_id, name=Sealed.clear(shown, [member_id]),
                            email=Sealed.clear(email or f"{member_id}@example.org", [member_id]), circles=list(circles))


def paused(member_id: str, until: date | None = None) -> AvailabilityChanged:
    return AvailabilityChanged(member_id=member_id, status="paused", paused_until=until)


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


def own_emails(member_id: str, on: bool, *, daily_digest: bool = True) -> NotificationSettingsChanged:
    return NotificationSettingsChanged(member_id=member_id, own_alert_emails=on, daily_digest=daily_digest)


def envelope(event: Event, *, occurred_at: datetime | None = None) -> Envelope:
    """Wrap as its producer would: signals get balance's deterministic id (member, kind, window start)."""
    if isinstance(event, SignalEvent) and not isinstance(event, SignalCleared):
        event_id = signal_event_id(event.member_id, signal_kind(event), event.window_start.isoformat())
        return wrap(event, producer="balance", event_id=event_id, occurred_at=occurred_at)
    if isinstance(event, SignalCleared):
        return wrap(event, producer="balance", occurred_at=occurred_at)
    return wrap(event, producer="ledger", occurred_at=occurred_at)


def at(days: float) -> datetime:
    """A fixed point in time `days` after the test epoch, for signals' occurred_at."""
    return datetime(2025, 5, 1, 9, 0, tzinfo=UTC) + timedelta(days=days)


class Feeder:
    """Feeds events to a projection as ProjectionConsumer would: partition by key, offsets advancing,
    one `apply` per batch. `replay()` applies the whole log again from offset 0."""

    PARTITIONS = {DIRECTORY.name: DIRECTORY.partitions, SIGNALS.name: SIGNALS.partitions,
                  EXCHANGES.name: EXCHANGES.partitions}

    def __init__(self, projection: Projection) -> None:
        self.projection = projection
        self.log: dict[PartitionKey, list[tuple[Envelope, Event]]] = {}

    def append(self, *items: Event | tuple[Envelope, Event]) -> list[Delivered]:
        """Append to the fake log and return the records, without applying them."""
        delivered = []
        for item in items:
            env, event = item if isinstance(item, tuple) else (envelope(item), item)
            topic = event.TOPIC
            key = (topic, zlib.crc32(env.key.encode()) % self.PARTITIONS[topic])
            records = self.log.setdefault(key, [])
            delivered.append(Delivered(topic, key[1], len(records), env, event))
            records.append((env, event))
        return delivered

    def apply(self, *items: Event | tuple[Envelope, Event]) -> list[Delivered]:
        """Append `items` and apply them as one batch."""
        delivered = self.append(*items)
        self.apply_records(delivered)
        return delivered

    def apply_records(self, delivered: Iterable[Delivered]) -> None:
        delivered = list(delivered)
        spans: dict[PartitionKey, OffsetRange] = {}
        for d in delivered:
            key = (d.topic, d.partition)
            span = spans.get(key)
            spans[key] = OffsetRange(first=d.offset if span is None else span.first, next=d.offset + 1)
        self.projection.apply(delivered, spans)

    def replay(self) -> None:
        """Apply the whole log again from offset 0 (the stored offsets must have been rewound)."""
        everything = [Delivered(t, p, i, env, ev) for (t, p), records in self.log.items()
                      for i, (env, ev) in enumerate(records)]
        self.apply_records(everything)
