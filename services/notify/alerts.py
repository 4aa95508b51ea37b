"""Signals become alerts and planned deliveries: each `balance.signals` event is recorded once by its id
(notify_alerts) and planned as one email per lead to tell, and one to the member herself (the outbox,
notify_deliveries, rows `pending` with their rendered content; the sender sends them later).

A signal can overtake the directory events it needs (topics are consumed independently): it is stored
as `waiting` with what is missing, retried after every later directory batch (`retry_waiting`), and
recorded as `failed` (visible to operators) if the directory has not caught up in time (`expire`). A
member's later signals wait behind their earlier waiting one, so an all clear is never planned before the
alert it clears. A lead gets at most one email per member per signal kind per rate-limit window; an all
clear goes to the leads who were told of the alert it clears. Everything here runs inside the
projection's transaction (reciprocity.notify.projection), with the offsets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from reciprocity.contracts.envelope import ContractError, decode
from reciprocity.contracts.events import SignalCleared, SignalEvent
from reciprocity.messaging.consumer import Delivered, PartitionKey
from sqlalchemy.engine import Connection

from .directory_view import load_directory
from .rendering import CLEARED, Email, Raised, render, render_for_member, signal_kind
from .routing import MemberFacts, Recipient, route
from .store import alerts, deliveries, forgotten, naive_utc

log = logging.getLogger(__name__)


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


class AlertPlanner:
    """Records signals as alerts and plans their deliveries, in the caller's transaction. `counts` collects
    the deliveries planned per status, for what the caller does after its commit."""

    def __init__(self, *, web_base_url: str, rate_limit_days: float, clock: Callable[[], datetime]) -> None:
        self._web_base_url = web_base_url
        self._rate_limit = timedelta(days=rate_limit_days)
        self._clock = clock

    def take(self, conn: Connection, d: Delivered, counts: dict[str, int],
             history_until: Mapping[PartitionKey, int]) -> None:
        """Record a signal as an alert and plan its deliveries, or let it wait (a signal seen before: nothing)."""
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
        if d.offset < history_until.get((d.topic, d.partition), -1):
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

    def retry_waiting(self, conn: Connection, counts: dict[str, int]) -> None:
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

    def expire(self, conn: Connection, max_wait_s: float, counts: dict[str, int]) -> int:
        """Record as failed the signals that waited for the directory longer than `max_wait_s`."""
        now = self._clock()
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
            self.retry_waiting(conn, counts)
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

    # --- planning: whom to tell, what to write, what the rate limit holds back ------------------------

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
