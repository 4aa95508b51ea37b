"""notify's view of the directory: `ledger.directory` events become its members, circles, leads and
memberships (notify_members, notify_circles, notify_circle_leads, notify_memberships), which routing
reads to find whom to tell. Each event is applied once by its id (notify_directory_applied) and every
application is idempotent, so a rewind that replays the topic rebuilds the same view. A forgotten member
is blanked here, and in the delivery log.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from reciprocity.common.bulk_sql import dialect_insert
from reciprocity.contracts.events import (
    AvailabilityChanged,
    CapacityDeclared,
    CircleFormed,
    CircleLeadsChanged,
    Event,
    MemberForgotten,
    MemberJoinedCircle,
    MemberLeftCircle,
    MemberRegistered,
    NotificationSettingsChanged,
)
from reciprocity.messaging.consumer import Delivered
from sqlalchemy.engine import Connection

from .routing import CircleFacts, Directory, MemberFacts
from .store import circle_leads, circles, deliveries, directory_applied, forgotten, members, memberships

log = logging.getLogger(__name__)



def not_applied_before(conn: Connection, delivered: list[Delivered]) -> list[Delivered]:
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
    statement = dialect_insert(conn, table).values(**values)
    update = [column for column in values if column not in keys]
    if update:
        statement = statement.on_conflict_do_update(index_elements=keys,
                                                    set_={c: statement.excluded[c] for c in update})
    else:
        statement = statement.on_conflict_do_nothing(index_elements=keys)
    conn.execute(statement)
