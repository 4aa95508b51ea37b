"""The ledger's write-side state: just what its command rules need to know, built by applying events.

The same `apply` runs when the ledger rebuilds its state from `ledger.directory` and `ledger.exchanges`
at start and after each successful append, so the state after a restart is the state before it.
Pure: no Flask, no Kafka.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime

from reciprocity.contracts.events import (
    AvailabilityChanged,
    CapacityDeclared,
    CircleFormed,
    CircleLeadsChanged,
    Event,
    ExchangeAcknowledged,
    ExchangeCorrected,
    ExchangeDisputed,
    ExchangeRecorded,
    ExchangeSharingChanged,
    ExchangeWithdrawn,
    MemberForgotten,
    MemberJoinedCircle,
    MemberLeftCircle,
    MemberRegistered,
    NotificationSettingsChanged,
    PolicyOverrides,
)
from reciprocity.contracts.sealed import text_of
from reciprocity.contracts.vocabulary import ACKNOWLEDGED, ACTIVE, DISPUTED, RECORDED, WITHDRAWN

log = logging.getLogger(__name__)



@dataclass
class Circle:
    id: str
    name: str
    parent: str | None
    leads: list[str] = field(default_factory=list)
    policy: PolicyOverrides | None = None


@dataclass
class Member:
    id: str
    name: str
    email: str
    circles: list[str]
    role: str
    weekly_hours: float | None = None
    status: str = ACTIVE
    paused_until: date | None = None
    own_alert_emails: bool = True
    daily_digest: bool = True


@dataclass
class Exchange:
    id: str
    giver: str
    receiver: str
    kind: str
    minutes: int
    occurred_on: date
    note: str
    recorded_by: str
    giver_circles: list[str]
    receiver_circles: list[str]
    shared: bool
    recorded_at: datetime | None
    status: str = RECORDED
    shared_by_other: bool = False  # the other party's consent to the wall (`shared` is the recorder's)
    settled_by: str | None = None  # who acknowledged, disputed or withdrew it
    settled_at: datetime | None = None

    @property
    def other_party(self) -> str:
        """The party who did not record it: the only one who may acknowledge or dispute it."""
        return self.receiver if self.recorded_by == self.giver else self.giver


@dataclass(frozen=True)
class Forgetting:
    """A forgetting as the operator page lists it: when and who asked, never whom."""

    at: datetime | None
    requested_by: str


@dataclass
class LedgerState:
    circles: dict[str, Circle] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    exchanges: dict[str, Exchange] = field(default_factory=dict)
    # Lower-cased email -> member id: one address, one member (sign-in and alert mail rely on it).
    emails: dict[str, str] = field(default_factory=dict)
    # Forgotten member ids: never registered again; their exchanges stay, without notes.
    forgotten: dict[str, Forgetting] = field(default_factory=dict)
    # Every event id applied: a repeated event (a retried append read back twice) is applied once.
    applied: set[uuid.UUID] = field(default_factory=set)

    def apply(self, event: Event, *, event_id: uuid.UUID | None = None, at: datetime | None = None) -> bool:
        """Apply one event; False when its id was applied before (and nothing changed)."""
        if event_id is not None:
            if event_id in self.applied:
                return False
            self.applied.add(event_id)
        handler = _APPLIERS.get(type(event))
        if handler is None:
            return True  # not a ledger event: nothing the rules need
        handler(self, event, at)
        return True

    def counts(self) -> dict[str, int]:
        by_status = {s: 0 for s in (RECORDED, ACKNOWLEDGED, DISPUTED, WITHDRAWN)}
        for exchange in self.exchanges.values():
            by_status[exchange.status] += 1
        return {
            "circles": len(self.circles),
            "members": len(self.members),
            "exchanges": len(self.exchanges),
            **{f"exchanges_{s}": n for s, n in by_status.items()},
        }


# --- appliers: one per event type ------------------------------------------------------------------------
# Each trusts the event: the rules were checked before it was appended. A fact about an aggregate this
# state does not know (which only a foreign writer could produce) is logged and skipped.


def _circle_formed(state: LedgerState, e: CircleFormed, _at: datetime | None) -> None:
    state.circles[e.circle_id] = Circle(id=e.circle_id, name=e.name, parent=e.parent, policy=e.policy)


def _leads_changed(state: LedgerState, e: CircleLeadsChanged, _at: datetime | None) -> None:
    circle = state.circles.get(e.circle_id)
    if circle is None:
        log.warning("leads for unknown circle %s skipped", e.circle_id)
        return
    circle.leads = list(e.leads)


# Events reach `apply` opened (reciprocity.common.sealing): sealed values are clear text, or "" once a
# member they are sealed for was forgotten.


def _member_registered(state: LedgerState, e: MemberRegistered, _at: datetime | None) -> None:
    if e.member_id in state.forgotten:
        return
    state.members[e.member_id] = Member(
        id=e.member_id, name=e.name.text, email=e.email.text, circles=list(e.circles), role=str(e.role)
    )
    if e.email.text:
        state.emails[e.email.text.lower()] = e.member_id


def _member_forgotten(state: LedgerState, e: MemberForgotten, at: datetime | None) -> None:
    member = state.members.pop(e.member_id, None)
    if member is not None and state.emails.get(member.email.lower()) == e.member_id:
        del state.emails[member.email.lower()]
    state.forgotten[e.member_id] = Forgetting(at=at, requested_by=e.requested_by)
    for exchange in state.exchanges.values():
        if e.member_id in (exchange.giver, exchange.receiver):
            exchange.note = ""


def _member(state: LedgerState, member_id: str) -> Member | None:
    member = state.members.get(member_id)
    if member is None:
        log.warning("event for unknown member %s skipped", member_id)
    return member


def _joined(state: LedgerState, e: MemberJoinedCircle, _at: datetime | None) -> None:
    member = _member(state, e.member_id)
    if member is not None and e.circle_id not in member.circles:
        member.circles.append(e.circle_id)


def _left(state: LedgerState, e: MemberLeftCircle, _at: datetime | None) -> None:
    member = _member(state, e.member_id)
    if member is not None and e.circle_id in member.circles:
        member.circles.remove(e.circle_id)


def _capacity(state: LedgerState, e: CapacityDeclared, _at: datetime | None) -> None:
    member = _member(state, e.member_id)
    if member is not None:
        member.weekly_hours = e.weekly_hours


def _availability(state: LedgerState, e: AvailabilityChanged, _at: datetime | None) -> None:
    member = _member(state, e.member_id)
    if member is not None:
        member.status = e.status
        member.paused_until = e.paused_until


def _notifications(state: LedgerState, e: NotificationSettingsChanged, _at: datetime | None) -> None:
    member = _member(state, e.member_id)
    if member is not None:
        member.own_alert_emails = e.own_alert_emails
        member.daily_digest = e.daily_digest


def _corrected(state: LedgerState, e: ExchangeCorrected, _at: datetime | None) -> None:
    exchange = state.exchanges.get(e.exchange_id)
    if exchange is None:
        log.warning("%s for unknown exchange %s skipped", e.TYPE, e.exchange_id)
        return
    note = "" if state.forgotten.keys() & {e.giver, e.receiver} else text_of(e.note)
    exchange.kind, exchange.minutes, exchange.occurred_on, exchange.note = str(e.kind), e.minutes, e.occurred_on, note


def _sharing(state: LedgerState, e: ExchangeSharingChanged, _at: datetime | None) -> None:
    exchange = state.exchanges.get(e.exchange_id)
    if exchange is None:
        log.warning("%s for unknown exchange %s skipped", e.TYPE, e.exchange_id)
        return
    if e.by == exchange.recorded_by:
        exchange.shared = e.shared
    else:
        exchange.shared_by_other = e.shared


def _recorded(state: LedgerState, e: ExchangeRecorded, at: datetime | None) -> None:
    state.exchanges[e.exchange_id] = Exchange(
        id=e.exchange_id,
        giver=e.giver,
        receiver=e.receiver,
        kind=str(e.kind),
        minutes=e.minutes,
        occurred_on=e.occurred_on,
        note="" if state.forgotten.keys() & {e.giver, e.receiver} else text_of(e.note),
        recorded_by=e.recorded_by,
        giver_circles=list(e.giver_circles),
        receiver_circles=list(e.receiver_circles),
        shared=e.shared,
        recorded_at=at,
    )


def _settled(status: str):  # type: ignore[no-untyped-def]
    def apply(state: LedgerState, e: ExchangeAcknowledged | ExchangeDisputed | ExchangeWithdrawn,
              at: datetime | None) -> None:
        exchange = state.exchanges.get(e.exchange_id)
        if exchange is None:
            log.warning("%s for unknown exchange %s skipped", e.TYPE, e.exchange_id)
            return
        exchange.status = status
        exchange.settled_by = e.by
        exchange.settled_at = at
        if isinstance(e, ExchangeAcknowledged):
            exchange.shared_by_other = e.shared

    return apply


_APPLIERS = {
    CircleFormed: _circle_formed,
    CircleLeadsChanged: _leads_changed,
    MemberRegistered: _member_registered,
    MemberJoinedCircle: _joined,
    MemberLeftCircle: _left,
    CapacityDeclared: _capacity,
    AvailabilityChanged: _availability,
    NotificationSettingsChanged: _notifications,
    MemberForgotten: _member_forgotten,
    ExchangeRecorded: _recorded,
    ExchangeAcknowledged: _settled(ACKNOWLEDGED),
    ExchangeDisputed: _settled(DISPUTED),
    ExchangeWithdrawn: _settled(WITHDRAWN),
    ExchangeSharingChanged: _sharing,
    ExchangeCorrected: _corrected,
}
