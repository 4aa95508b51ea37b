"""The consumer side of notify: directory events become notify's view of the directory, signals become
planned deliveries (the outbox), and the consumed offsets move in the same transaction.

One ProjectionConsumer reads both `ledger.directory` and `balance.signals` under one group, so one
transaction covers a batch of both. Within a batch the directory events are applied first. Topics
are still consumed independently, so a signal can overtake the directory events it needs (a member
registered a moment before balance noticed them): such a signal is stored as `waiting` with what is
missing, retried after every later directory batch, and recorded as `failed` (visible to operators)
if the directory has not caught up after `directory_wait_s`. A member's later signals wait behind
their earlier waiting one, so an all clear is never planned before the alert it clears.

Side effects after facts: nothing is sent here. The planned deliveries are rows (`pending`, with
their rendered content) committed together with the offsets, so the offsets can never get ahead of
what must be sent; the sender sends them later. A signal whose event_id is already known (a replay,
a redelivery) changes nothing.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from reciprocity.common.db import reading
from reciprocity.common.sealing import Opener
from reciprocity.contracts.envelope import ContractError, decode
from reciprocity.contracts.events import (
    AvailabilityChanged,
    CapacityDeclared,
    CircleFormed,
    CircleLeadsChanged,
    DirectoryEvent,
    Event,
    ExchangeFacts,
    MemberForgotten,
    MemberJoinedCircle,
    MemberLeftCircle,
    MemberRegistered,
    NotificationSettingsChanged,
    SignalCleared,
    SignalEvent,
)
from reciprocity.messaging.consumer import Delivered, OffsetRange, PartitionKey
from sqlalchemy.engine import Connection, Engine

from . import metrics
from .digest import apply_exchange_event
from .rendering import CLEARED, Email, Raised, render, render_for_member, signal_kind
from .routing import CircleFacts, Directory, MemberFacts, Recipient, route
from .store import (
    alerts,
    circle_leads,
    circles,
    deliveries,
    directory_applied,
    forgotten,
    members,
    memberships,
    naive_utc,
    positions,
    utcnow,
)

log = logging.getLogger(__name__)

CrashHook = Callable[[str], None]


def _no_crash(_step: str) -> None:
    return None


@dataclass
class _Alert:
    event_id: str
    event: SignalEvent
    member_id: str
    kind: str
    signal_at: datetime


@dataclass
class _Outcome:
    status: str  # waiting | planned | failed | nothing_to_send
    reason: str | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)


class NotifyProjection:
    def __init__(
        self,
        engine: Engine,
        *,
        web_base_url: str,
        rate_limit_days: float = 7.0,
        clock: Callable[[], datetime] = utcnow,
        on_planned: Callable[[], None] | None = None,
        crash_hook: CrashHook | None = None,
        opener: Opener | None = None,
    ) -> None:
        self._engine = engine
        # Opens the sealed names and addresses of MemberRegistered with keys from the ledger.
        self.opener = opener if opener is not None else Opener(None)
        self._web_base_url = web_base_url
        self._rate_limit = timedelta(days=rate_limit_days)
        self._clock = clock
        self._on_planned = on_planned or (lambda: None)
        self._hook = crash_hook or _no_crash
        # Signals below these offsets were in the log before this delivery log began (NOTIFY_SKIP_HISTORY):
        # recorded, never mailed.
        self.history_until: dict[PartitionKey, int] = {}

    # --- Projection protocol ------------------------------------------------------------------

    def load_offsets(self, partitions: Sequence[PartitionKey]) -> dict[PartitionKey, int]:
        with reading(self._engine) as conn:
            return positions.load(conn, partitions)

    def apply(self, events: Sequence[Delivered], spans: dict[PartitionKey, OffsetRange]) -> None:
        counts = {"pending": 0, "suppressed": 0}
        with self._engine.begin() as conn:
            positions.advance(conn, spans)
            directory_events = _not_applied_before(conn, [d for d in events if isinstance(d.event, DirectoryEvent)])
            signals = [d for d in events if isinstance(d.event, SignalEvent)]
            for d in events:
                if isinstance(d.event, ExchangeFacts):  # what the daily digest will tell
                    apply_exchange_event(conn, str(d.envelope.event_id), d.event, d.envelope.occurred_at)
                elif not isinstance(d.event, DirectoryEvent | SignalEvent):
                    log.warning("ignoring %s at %s[%d]@%d: not a directory, exchange or signal event",
                                d.envelope.type, d.topic, d.partition, d.offset)
            for d in directory_events:
                if isinstance(d.event, MemberForgotten):
                    self.opener.forget(d.event.member_id)
            opened = self.opener.open_events([(str(d.envelope.event_id), d.event) for d in directory_events])
            for event in opened:
                apply_directory_event(conn, event)
            if directory_events:
                self._retry_waiting(conn, counts)
            for d in signals:
                self._take_signal(conn, d, counts)
            self._hook("plan:before_commit")
        self._hook("plan:after_commit")
        self._after_commit(counts)

    # --- signals ------------------------------------------------------------------------------

    def _take_signal(self, conn: Connection, d: Delivered, counts: dict[str, int]) -> None:
        event_id = str(d.envelope.event_id)
        if conn.execute(sa.select(alerts.c.status).where(alerts.c.event_id == event_id)).first():
            log.debug("signal %s already seen; nothing to do", event_id)
            return
        event = d.event
        assert isinstance(event, SignalEvent)
        alert = _Alert(event_id, event, event.member_id, signal_kind(event), naive_utc(d.envelope.occurred_at))
        now = self._clock()
        conn.execute(sa.insert(alerts).values(
            event_id=event_id, type=d.envelope.type, member_id=alert.member_id, kind=alert.kind,
            envelope=d.envelope.model_dump_json(), signal_at=alert.signal_at,
            source_partition=d.partition, source_offset=d.offset,
            status="waiting", reason=None, attempts=0, first_seen_at=now,
        ))
        if d.offset < self.history_until.get((d.topic, d.partition), -1):
            self._record(conn, alert, _Outcome("nothing_to_send", "in balance.signals before this delivery log "
                                                                  "began (NOTIFY_SKIP_HISTORY): not mailed"), counts)
            return
        if self._member_blocked(conn, alert.member_id, event_id):
            self._record(conn, alert, _Outcome("waiting", "waiting behind an earlier signal about this member"),
                         counts)
            return
        self._record(conn, alert, self._plan(conn, alert), counts)

    def _member_blocked(self, conn: Connection, member_id: str, event_id: str) -> bool:
        return conn.execute(
            sa.select(alerts.c.event_id).where(alerts.c.member_id == member_id, alerts.c.status == "waiting",
                                               alerts.c.event_id != event_id).limit(1)
        ).first() is not None

    def _retry_waiting(self, conn: Connection, counts: dict[str, int]) -> None:
        """Plan the waiting signals the directory now knows enough about, oldest first."""
        rows = conn.execute(
            sa.select(alerts.c.event_id, alerts.c.envelope, alerts.c.signal_at, alerts.c.member_id, alerts.c.kind)
            .where(alerts.c.status == "waiting")
            .order_by(alerts.c.source_partition, alerts.c.source_offset)
        ).all()
        blocked: set[str] = set()
        for row in rows:
            try:
                _, event = decode(row.envelope)
            except ContractError as err:  # stored by an older notify; cannot happen with the same contracts
                self._record(conn, _Alert(row.event_id, None, row.member_id, row.kind, row.signal_at),  # type: ignore[arg-type]
                             _Outcome("failed", f"stored signal no longer readable: {err}"), counts)
                continue
            assert isinstance(event, SignalEvent)
            alert = _Alert(row.event_id, event, row.member_id, row.kind, row.signal_at)
            outcome = (_Outcome("waiting", "waiting behind an earlier signal about this member")
                       if alert.member_id in blocked else self._plan(conn, alert))
            if outcome.status == "waiting":
                blocked.add(alert.member_id)
            self._record(conn, alert, outcome, counts)

    def expire_waiting(self, max_wait_s: float) -> int:
        """Record as failed the signals that waited for the directory longer than `max_wait_s`."""
        now = self._clock()
        counts = {"pending": 0, "suppressed": 0}
        with self._engine.begin() as conn:
            expired = conn.execute(
                sa.select(alerts.c.event_id, alerts.c.reason)
                .where(alerts.c.status == "waiting", alerts.c.first_seen_at < now - timedelta(seconds=max_wait_s))
            ).all()
            for event_id, reason in expired:
                conn.execute(
                    sa.update(alerts).where(alerts.c.event_id == event_id, alerts.c.status == "waiting").values(
                        status="failed", resolved_at=now,
                        reason=f"the directory did not catch up within {max_wait_s:g} s ({reason})",
                    )
                )
                log.error("signal %s failed: the directory did not catch up (%s)", event_id, reason)
            if expired:
                # A member's later signals waited behind the expired one: they may go now.
                self._retry_waiting(conn, counts)
        self._after_commit(counts)
        return len(expired)

    def _record(self, conn: Connection, alert: _Alert, outcome: _Outcome, counts: dict[str, int]) -> None:
        now = self._clock()
        values: dict[str, Any] = {"status": outcome.status, "reason": outcome.reason,
                                  "attempts": alerts.c.attempts + 1}
        if outcome.status != "waiting":
            values["resolved_at"] = now
        # Only a waiting alert moves on: if another thread resolved it meanwhile, this changes nothing.
        moved = conn.execute(
            sa.update(alerts).where(alerts.c.event_id == alert.event_id, alerts.c.status == "waiting").values(**values)
        ).rowcount
        if moved != 1 or not outcome.rows:
            return
        conn.execute(sa.insert(deliveries), [{**row, "created_at": now} for row in outcome.rows])
        for row in outcome.rows:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        if outcome.status == "planned":
            log.info("signal %s (%s about %s): %s", alert.event_id, alert.kind, alert.member_id,
                     ", ".join(f"{r['recipient']}={r['status']}" for r in outcome.rows))

    def _after_commit(self, counts: dict[str, int]) -> None:
        if counts.get("suppressed"):
            metrics.SUPPRESSED.inc(counts["suppressed"])
        if counts.get("pending"):
            self._on_planned()

    # --- planning -----------------------------------------------------------------------------

    def _plan(self, conn: Connection, alert: _Alert) -> _Outcome:
        if conn.execute(sa.select(forgotten.c.member_id).where(forgotten.c.member_id == alert.member_id)).first():
            return _Outcome("nothing_to_send", "about a former member (forgotten)")
        if isinstance(alert.event, SignalCleared):
            return self._plan_clear(conn, alert, alert.event)
        event = alert.event
        directory = load_directory(conn, event.member_id, event.circles)
        routing = route(event.member_id, event.circles, directory, on=event.window_end)
        if not routing.complete:
            return _Outcome("waiting", "the directory does not know yet: " + ", ".join(routing.missing))
        if not routing.recipients:
            # Maybe nobody leads these circles; maybe their leads are simply not consumed yet (a circle is
            # formed, then given leads). Wait like for any other gap; if it lasts, it is recorded as failed.
            where = ", ".join(event.circles) or "no circle at all"
            why = f"nobody to tell: no lead to tell in {where} or any circle above it"
            if routing.skipped:
                why += " (" + "; ".join(s.reason for s in routing.skipped) + ")"
            return _Outcome("waiting", why)
        member = directory.members[event.member_id]
        emails = render(alert.event_id, event, member, routing.recipients, directory,
                        web_base_url=self._web_base_url)
        rows = []
        for email in emails:
            limited = self._rate_limited(conn, alert, email.recipient)
            rows.append(self._row(alert, email, "suppressed" if limited else "pending", limited))
        # Skipped leads (paused) get a suppressed row with the reason and what they would have read.
        skipped = render(alert.event_id, event, member,
                         [Recipient(s.member_id, directory.members[s.member_id].display_name, s.email or "", ())
                          for s in routing.skipped], directory, web_base_url=self._web_base_url)
        reasons = {s.member_id: s.reason for s in routing.skipped}
        rows += [self._row(alert, email, "suppressed", reasons[email.recipient]) for email in skipped]
        # Nothing about me without me: she gets her own short email (SPEC), unless she turned those off.
        # (Turned off, there is nothing owed to anyone, so nothing to record either.)
        if member.own_alert_emails and member.email:
            own = render_for_member(alert.event_id, event, member, directory, web_base_url=self._web_base_url)
            limited = self._rate_limited(conn, alert, own.recipient)
            rows.append(self._row(alert, own, "suppressed" if limited else "pending", limited))
        return _Outcome("planned", None, rows)

    def _plan_clear(self, conn: Connection, alert: _Alert, event: SignalCleared) -> _Outcome:
        """An all clear goes to the leads who were told (or are about to be told) of the alert it clears,
        whoever leads the circles now; it is not rate limited (at most one per alert sent)."""
        raised = conn.execute(
            sa.select(alerts.c.status, alerts.c.kind, alerts.c.signal_at)
            .where(alerts.c.event_id == event.raised_event_id)
        ).first()
        if raised is None:
            return _Outcome("nothing_to_send", f"the alert it clears ({event.raised_event_id}) was never received")
        if event.reason == "paused":
            # SPEC: pausing is never reported. The leads' pages show "paused", with no reason and no email.
            return _Outcome("nothing_to_send", "cleared by a pause: a pause is never reported")
        if raised.status == "waiting":
            return _Outcome("waiting", "waiting for the alert it clears")
        told = conn.execute(
            sa.select(deliveries.c.recipient, deliveries.c.to_address, deliveries.c.to_name)
            .where(deliveries.c.alert_id == event.raised_event_id, deliveries.c.status.in_(("pending", "sent")),
                   deliveries.c.recipient != event.member_id)  # an all clear is for the leads who were told
            .order_by(deliveries.c.recipient)
        ).all()
        if not told:
            return _Outcome("nothing_to_send", "the alert it clears reached nobody (suppressed or failed)")
        directory = load_directory(conn, event.member_id, event.circles)
        member = directory.members.get(event.member_id) or MemberFacts(event.member_id)
        if event.reason is None and member.paused_on(event.window_end):
            # A v1 clear did not say why; a member paused on its day was most likely cleared by the pause.
            return _Outcome("nothing_to_send", "cleared while the member is paused: a pause is never reported")
        recipients = [Recipient(t.recipient, t.to_name or t.recipient, t.to_address or "", ()) for t in told]
        emails = render(alert.event_id, event, member, recipients, directory, web_base_url=self._web_base_url,
                        raised=Raised(raised.kind, raised.signal_at.date()))
        return _Outcome("planned", None, [self._row(alert, email, "pending", None) for email in emails])

    def _rate_limited(self, conn: Connection, alert: _Alert, recipient: str) -> str | None:
        """Why `recipient` must not get this alert: they had one about the member and kind lately."""
        if alert.kind == CLEARED or not self._rate_limit:
            return None
        d = deliveries.c
        earlier = conn.execute(
            sa.select(d.alert_id, d.signal_at)
            .where(d.recipient == recipient, d.member_id == alert.member_id, d.kind == alert.kind,
                   d.status.in_(("pending", "sent")), d.alert_id != alert.event_id,
                   d.signal_at > alert.signal_at - self._rate_limit)
            .order_by(d.signal_at.desc()).limit(1)
        ).first()
        if earlier is None:
            return None
        days = self._rate_limit.total_seconds() / 86400
        return (f"rate limit: {recipient} was told about {alert.member_id} ({alert.kind}) on "
                f"{earlier.signal_at:%Y-%m-%d %H:%M} UTC (alert {earlier.alert_id}); "
                f"at most one such email every {days:g} days")

    def _row(self, alert: _Alert, email: Email, status: str, reason: str | None) -> dict[str, Any]:
        return {
            "alert_id": alert.event_id,
            "recipient": email.recipient,
            "member_id": alert.member_id,
            "kind": alert.kind,
            "signal_type": alert.event.TYPE,
            "to_address": email.to,
            "to_name": email.to_name,
            "subject": email.subject,
            "text_body": email.text,
            "html_body": email.html,
            "status": status,
            "attempts": 0,
            "last_error": reason,
            "signal_at": alert.signal_at,
            "next_attempt_at": None,
        }


# --- the directory view ---------------------------------------------------------------------------


def _not_applied_before(conn: Connection, delivered: list[Delivered]) -> list[Delivered]:
    """The directory events whose id was not applied before (in an earlier batch or earlier in this
    one), remembered as applied now: a repeated event id is applied once (SPEC)."""
    ids = [str(d.envelope.event_id) for d in delivered]
    seen: set[str] = set()
    for i in range(0, len(ids), 500):
        seen.update(conn.execute(sa.select(directory_applied.c.event_id)
                                 .where(directory_applied.c.event_id.in_(ids[i:i + 500]))).scalars())
    fresh: list[Delivered] = []
    for d, event_id in zip(delivered, ids, strict=True):
        if event_id in seen:
            log.info("directory event %s at %s[%d]@%d applied before; skipped", event_id, d.topic, d.partition,
                     d.offset)
            continue
        seen.add(event_id)
        fresh.append(d)
    if fresh:
        conn.execute(sa.insert(directory_applied), [{"event_id": str(d.envelope.event_id)} for d in fresh])
    return fresh


def apply_directory_event(conn: Connection, event: Event) -> None:
    """Project one directory event. Idempotent, so a rewind that replays the topic rebuilds the same view."""
    if isinstance(event, CircleFormed):
        _upsert(conn, circles, {"circle_id": event.circle_id, "name": event.name, "parent": event.parent},
                ["circle_id"])
    elif isinstance(event, CircleLeadsChanged):
        conn.execute(sa.delete(circle_leads).where(circle_leads.c.circle_id == event.circle_id))
        leads = list(dict.fromkeys(event.leads))
        if leads:
            conn.execute(sa.insert(circle_leads), [
                {"circle_id": event.circle_id, "member_id": lead, "position": i} for i, lead in enumerate(leads)
            ])
    elif isinstance(event, MemberRegistered):
        # Opened (reciprocity.common.sealing): "" once the member is forgotten, stored as nothing.
        _upsert(conn, members, {"member_id": event.member_id, "name": event.name.text or None,
                                "email": event.email.text or None, "role": event.role.value}, ["member_id"])
        conn.execute(sa.delete(memberships).where(memberships.c.member_id == event.member_id))
        for circle_id in dict.fromkeys(event.circles):
            _upsert(conn, memberships, {"member_id": event.member_id, "circle_id": circle_id},
                    ["member_id", "circle_id"])
    elif isinstance(event, MemberJoinedCircle):
        _upsert(conn, memberships, {"member_id": event.member_id, "circle_id": event.circle_id},
                ["member_id", "circle_id"])
    elif isinstance(event, MemberLeftCircle):
        conn.execute(sa.delete(memberships).where(memberships.c.member_id == event.member_id,
                                                  memberships.c.circle_id == event.circle_id))
    elif isinstance(event, CapacityDeclared):
        _upsert(conn, members, {"member_id": event.member_id, "weekly_hours": event.weekly_hours}, ["member_id"])
    elif isinstance(event, AvailabilityChanged):
        _upsert(conn, members, {"member_id": event.member_id, "status": event.status,
                                "paused_until": event.paused_until}, ["member_id"])
    elif isinstance(event, NotificationSettingsChanged):
        _upsert(conn, members, {"member_id": event.member_id, "own_alert_emails": event.own_alert_emails,
                                "daily_digest": event.daily_digest}, ["member_id"])
    elif isinstance(event, MemberForgotten):
        forget_member(conn, event.member_id)
    else:
        log.warning("directory event %s is not one notify knows; ignored", type(event).__name__)


def forget_member(conn: Connection, member_id: str) -> None:
    """Blank what notify holds of a forgotten member: their name and address, and every email about or
    to them in the delivery log (subject, bodies, address, the SMTP server's last error, which may quote
    the address). Emails still waiting are not sent. What was delivered already cannot be recalled."""
    _upsert(conn, forgotten, {"member_id": member_id}, ["member_id"])
    known = conn.execute(sa.select(members.c.name, members.c.email).where(members.c.member_id == member_id)).first()
    conn.execute(sa.update(members).where(members.c.member_id == member_id).values(name=None, email=None))
    involved = sa.or_(deliveries.c.member_id == member_id, deliveries.c.recipient == member_id)
    # Emails to others that name her (a daily digest: "Zoe recorded ... with you", a lead's alert
    # naming a co-lead): found by her name and address as notify last knew them, HTML-escaped too.
    for text in {t for value in (known or ()) if value for t in (value, html.escape(value))}:
        pattern = f"%{text}%"
        involved = sa.or_(involved, deliveries.c.subject.like(pattern), deliveries.c.text_body.like(pattern),
                          deliveries.c.html_body.like(pattern))
    conn.execute(sa.update(deliveries).where(involved, deliveries.c.status.in_(("pending", "failed")))
                 .values(status="suppressed"))
    conn.execute(sa.update(deliveries).where(involved).values(
        to_address=None, to_name=None, subject="(about or to a former member)", text_body="", html_body="",
        last_error=None))


def load_directory(conn: Connection, member_id: str, circle_ids: Sequence[str]) -> Directory:
    """The member, their circles and every ancestor, and every lead of those circles."""
    found: dict[str, CircleFacts] = {}
    asked: set[str] = set()
    frontier = set(circle_ids)
    while frontier:
        asked |= frontier
        rows = conn.execute(sa.select(circles).where(circles.c.circle_id.in_(frontier))).all()
        leads: dict[str, list[str]] = {}
        for circle_id, lead in conn.execute(
            sa.select(circle_leads.c.circle_id, circle_leads.c.member_id)
            .where(circle_leads.c.circle_id.in_(frontier)).order_by(circle_leads.c.position)
        ):
            leads.setdefault(circle_id, []).append(lead)
        for row in rows:
            found[row.circle_id] = CircleFacts(row.circle_id, row.name, row.parent, tuple(leads.get(row.circle_id, ())))
        frontier = {row.parent for row in rows if row.parent and row.parent not in asked}
    wanted = {member_id} | {lead for circle in found.values() for lead in circle.leads}
    people = {
        row.member_id: MemberFacts(row.member_id, row.name, row.email, row.status, row.paused_until, row.weekly_hours,
                                   row.own_alert_emails, row.daily_digest)
        for row in conn.execute(sa.select(members).where(members.c.member_id.in_(wanted)))
    }
    return Directory(members=people, circles=found)


def _upsert(conn: Connection, table: sa.Table, values: dict[str, Any], keys: list[str]) -> None:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(table).values(**values)
    update = [column for column in values if column not in keys]
    if update:
        statement = statement.on_conflict_do_update(index_elements=keys,
                                                    set_={c: statement.excluded[c] for c in update})
    else:
        statement = statement.on_conflict_do_nothing(index_elements=keys)
    conn.execute(statement)
