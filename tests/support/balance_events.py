"""Builders of ledger events for the balance tests: envelopes as the ledger would append them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime

from reciprocity.contracts.envelope import Envelope, wrap
from reciprocity.contracts.events import (
    AvailabilityChanged,
    CapacityDeclared,
    CircleFormed,
    Event,
    ExchangeAcknowledged,
    ExchangeDisputed,
    ExchangeRecorded,
    ExchangeWithdrawn,
    MemberRegistered,
    PolicyOverrides,
)
from reciprocity.contracts.sealed import Sealed
from reciprocity.messaging.consumer import Delivered, OffsetRange, Projection
from reciprocity.messaging.event_log import EventLog, Outgoing


def env(event: Event, at: datetime | None = None) -> Envelope:
    return wrap(event, producer="ledger", occurred_at=at or datetime.now(UTC))


def circle(circle_id: str, name: str | None = None, policy: PolicyOverrides | None = None) -> CircleFormed:
    return CircleFormed(circle_id=circle_id, name=name or circle_id.title(), policy=policy)


def member(member_id: str, circles: Sequence[str] = (), name: str | None = None) -> MemberRegistered:
    # Clear values, as events written before sealing held them: projections read both alike, and these
    # tests need no key source. The sealing itself is tested in test_sealing.py and end to end.
    return MemberRegistered(member_id=member_id, name=Sealed.clear(name or member_id.title(), [member_id]),
                            email=Sealed.clear(f"{member_id}@example.org", [member_id]), circles=list(circles))


def capacity(member_id: str, hours: float | None) -> CapacityDeclared:
    return CapacityDeclared(member_id=member_id, weekly_hours=hours)


def pause(member_id: str, until: date | None = None) -> AvailabilityChanged:
    return AvailabilityChanged(member_id=member_id, status="paused", paused_until=until)


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


class Feeder:
    """Hands events to a projection as the consumer would: in batches, with offset ranges per partition."""

    def __init__(self, projection: Projection) -> None:
        self.projection = projection
        self.next: dict[tuple[str, int], int] = {}

    def feed(self, events: Sequence[Event], partition: int = 0, at: datetime | None = None) -> None:
        batch: list[Delivered] = []
        offsets: dict[tuple[str, int], OffsetRange] = {}
        for e in events:
            key = (e.TOPIC, partition)
            offset = self.next.get(key, 0)
            batch.append(Delivered(e.TOPIC, partition, offset, env(e, at), e))
            first = offsets[key].first if key in offsets else offset
            offsets[key] = OffsetRange(first=first, next=offset + 1)
            self.next[key] = offset + 1
        self.projection.load_offsets(list(offsets))  # as the consumer seeks on assignment
        self.projection.apply(batch, offsets)


def append(log: EventLog, events: Sequence[Event]) -> None:
    log.append([Outgoing.event(e.TOPIC, env(e)) for e in events])
