"""The daily digest: one email a day at most to a member, telling her what others recorded with her that
waits for her acknowledgement, and the disputes and withdrawals of exchanges of hers; nothing on a day
with nothing new, nothing when she turned it off (NotificationSettingsChanged.daily_digest).

The ledger's exchange events become `notify_digest_items` in the projection's transaction (with the
consumed offsets, so none is lost or counted twice). `plan_digests` turns each member's untold items
into one delivery row whose id is uuid5(member, day): the delivery log's primary key makes a second
digest on the same day impossible, also after a restart, and the sender's guarantees (lease, mark sent,
retry with backoff) are the alerts' own.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from html import escape

import sqlalchemy as sa
from reciprocity.contracts.events import (
    Event,
    ExchangeAcknowledged,
    ExchangeDisputed,
    ExchangeRecorded,
    ExchangeWithdrawn,
)
from reciprocity.contracts.vocabulary import DISPUTED, WITHDRAWN
from sqlalchemy.engine import Connection, Engine

from .rendering import duration, one_line, wrap_text
from .store import deliveries, digest_items, members, naive_utc

log = logging.getLogger(__name__)

DIGEST_NAMESPACE = uuid.UUID("5b6d7c1e-2a44-4f0b-9a7e-3c1d2e4f5a60")
KIND = "digest"
SIGNAL_TYPE = "DailyDigest"


def digest_id(member_id: str, day: date) -> str:
    """The one digest a member may get on a day: its id is the delivery log's key."""
    return str(uuid.uuid5(DIGEST_NAMESPACE, f"{member_id}:{day.isoformat()}"))


def apply_exchange_event(conn: Connection, event_id: str, event: Event, at: datetime) -> None:
    """Project one ledger.exchanges event into digest items (idempotent: an item's key is its event id)."""
    x = digest_items.c
    if isinstance(event, ExchangeRecorded):
        other_party = event.receiver if event.recorded_by == event.giver else event.giver
        _item(conn, event_id, other_party, event, "waiting", event.recorded_by, at)
    elif isinstance(event, ExchangeAcknowledged | ExchangeDisputed | ExchangeWithdrawn):
        conn.execute(sa.update(digest_items).where(x.exchange_id == event.exchange_id, x.what == "waiting")
                     .values(resolved=True))
        if isinstance(event, ExchangeDisputed):  # the recorder hears the other party disputed hers
            recorder = event.receiver if event.by == event.giver else event.giver
            _item(conn, event_id, recorder, event, DISPUTED, event.by, at)
        elif isinstance(event, ExchangeWithdrawn):  # the other party hears the recorder withdrew it
            other_party = event.receiver if event.by == event.giver else event.giver
            _item(conn, event_id, other_party, event, WITHDRAWN, event.by, at)


def _item(conn: Connection, event_id: str, member_id: str, event: Event, what: str, other_id: str,
          at: datetime) -> None:
    values = {"event_id": event_id, "member_id": member_id, "exchange_id": event.exchange_id,  # type: ignore[attr-defined]
              "what": what, "other_id": other_id, "kind": str(event.kind.value),  # type: ignore[attr-defined]
              "minutes": event.minutes, "occurred_on": event.occurred_on, "at": naive_utc(at)}  # type: ignore[attr-defined]
    if conn.execute(sa.select(digest_items.c.event_id).where(digest_items.c.event_id == event_id)).first():
        return  # a repeated event id is applied once
    conn.execute(sa.insert(digest_items).values(**values))


@dataclass(frozen=True)
class Item:
    what: str
    other_name: str
    kind: str
    minutes: int
    occurred_on: date


def plan_digests(engine: Engine, *, now: datetime, web_base_url: str, on_planned: Callable[[], None] = lambda: None,
                 ) -> int:
    """Plan today's digests for every member with something new to hear; returns how many were planned."""
    day = now.date()
    planned = 0
    with engine.begin() as conn:
        x = digest_items.c
        due = sorted({r.member_id for r in conn.execute(
            sa.select(x.member_id).where(x.digest_id.is_(None)).distinct())})
        for member_id in due:
            if _plan_one(conn, member_id, day, now, web_base_url):
                planned += 1
    if planned:
        on_planned()
    return planned


def _plan_one(conn: Connection, member_id: str, day: date, now: datetime, web_base_url: str) -> bool:
    the_id = digest_id(member_id, day)
    if conn.execute(sa.select(deliveries.c.alert_id).where(deliveries.c.alert_id == the_id)).first():
        return False  # today's digest went (or is going) out; what is new waits for tomorrow's
    member = conn.execute(sa.select(members).where(members.c.member_id == member_id)).first()
    if member is None or not member.name or not member.email:
        return False  # the directory does not know her yet: the items wait
    x = digest_items.c
    untold = conn.execute(sa.select(digest_items).where(x.member_id == member_id, x.digest_id.is_(None))
                          .order_by(x.at, x.event_id)).all()
    fresh = [r for r in untold if not (r.what == "waiting" and r.resolved)]
    if not member.daily_digest or not fresh:
        # Turned off, or all of it settled before a digest told her: nothing to send, nothing owed later.
        conn.execute(sa.update(digest_items).where(x.event_id.in_([r.event_id for r in untold]))
                     .values(digest_id="none"))
        return False
    names = dict(conn.execute(sa.select(members.c.member_id, members.c.name)
                              .where(members.c.member_id.in_({r.other_id for r in fresh}))).all())
    # A member notify knows without a name was forgotten (MemberForgotten blanks it): "a former member".
    items = [Item(r.what, names.get(r.other_id) or ("a former member" if r.other_id in names else r.other_id),
                  r.kind, r.minutes, r.occurred_on) for r in fresh]
    still_waiting = conn.execute(sa.select(sa.func.count()).select_from(digest_items).where(
        x.member_id == member_id, x.what == "waiting", x.resolved.is_(False), x.digest_id.is_not(None),
        x.digest_id != "none")).scalar() or 0
    subject, text, html = render_digest(member.name, items, int(still_waiting), web_base_url)
    conn.execute(sa.insert(deliveries).values(
        alert_id=the_id, recipient=member_id, member_id=member_id, kind=KIND, signal_type=SIGNAL_TYPE,
        to_address=member.email, to_name=one_line(member.name), subject=subject, text_body=text, html_body=html,
        status="pending", attempts=0, signal_at=naive_utc(now), created_at=naive_utc(now)))
    conn.execute(sa.update(digest_items).where(x.event_id.in_([r.event_id for r in untold])).values(digest_id=the_id))
    log.info("daily digest %s for %s: %d item(s)", the_id, member_id, len(items))
    return True


def _line(item: Item) -> str:
    what = f"{duration(item.minutes)} of {item.kind} on {item.occurred_on.day} {item.occurred_on:%B}"
    if item.what == "waiting":
        return f"{item.other_name} recorded {what} with you; it waits for your acknowledgement."
    if item.what == DISPUTED:
        return f"{item.other_name} disputed the {what} you recorded."
    return f"{item.other_name} withdrew the {what} they had recorded with you."


def render_digest(name: str, items: list[Item], earlier_waiting: int, web_base_url: str) -> tuple[str, str, str]:
    base = web_base_url.rstrip("/")
    waiting = sum(i.what == "waiting" for i in items)
    subject = (f"{waiting} exchange{'' if waiting == 1 else 's'} waiting for you" if waiting
               else "What happened with your exchanges")
    lines = [f"Hello {one_line(name)},", "", "Since yesterday:"] + [f"- {_line(i)}" for i in items]
    if earlier_waiting:
        lines += ["", f"{earlier_waiting} more from earlier still wait for your acknowledgement."]
    lines += ["", f"Acknowledge, thank or dispute them on your dashboard: {base}/",
              "", f"You get this at most once a day, and only when there is something new. To stop it, turn it "
              f"off on your Capacity page: {base}/capacity#emails", "-- Reciprocity"]
    text = wrap_text("\n".join(lines) + "\n")
    html = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + escape(subject) +
            "</title></head><body style=\"font-family: system-ui, sans-serif; color: #1f2933; line-height: 1.5; "
            "max-width: 36rem; margin: 0 auto; padding: 1rem;\">"
            f"<p>Hello {escape(name)},</p><p>Since yesterday:</p><ul>"
            + "".join(f"<li>{escape(_line(i))}</li>" for i in items) + "</ul>"
            + (f"<p>{earlier_waiting} more from earlier still wait for your acknowledgement.</p>" if earlier_waiting
               else "")
            + f"<p><a href=\"{escape(base)}/\" style=\"color: #2f6f62;\">Your dashboard</a></p>"
            "<hr style=\"border: none; border-top: 1px solid #d9e2ec;\">"
            "<p style=\"font-size: 0.85em; color: #52606d;\">"
            "At most once a day, and only when there is something new. To stop it, turn it off on your "
            f"<a href=\"{escape(base)}/capacity#emails\" style=\"color: #2f6f62;\">Capacity page</a>.</p>"
            "</body></html>")
    return subject, text, html
