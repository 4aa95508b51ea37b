"""notify's database: its own view of the directory, the alerts it has seen, the delivery log, and the
consumed offsets, all in one database so that each batch commits them together.

SQLAlchemy Core; SQLite by default, PostgreSQL by DATABASE_URL, opened by reciprocity.common.db. The
schema is created by the alembic migrations in `migrations/` (version table `notify_alembic_version`),
never by `metadata.create_all`, so a deployed database and a test database are built the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from reciprocity.common import db as common_db
from reciprocity.common.db import Schema
from reciprocity.contracts.topics import DIRECTORY
from reciprocity.messaging.tracking import OffsetStore
from sqlalchemy.engine import Connection, Engine

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "notify_alembic_version"

metadata = sa.MetaData()

offsets = sa.Table(
    "notify_offsets", metadata,
    sa.Column("topic", sa.String(200), primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True),
    sa.Column("next_offset", sa.BigInteger, nullable=False),
)
# The consumed positions, committed with each batch (reciprocity.messaging.tracking).
positions = OffsetStore(offsets)

# Directory events applied, so a repeated event id (a dead letter redriven beside its original) is
# applied once: replaying an old join after a later leave would otherwise undo the leave.
directory_applied = sa.Table(
    "notify_directory_applied", metadata,
    sa.Column("event_id", sa.String(36), primary_key=True),
)

# Members forgotten: their row keeps no name or address, and nothing is mailed about or to them again.
forgotten = sa.Table(
    "notify_forgotten", metadata,
    sa.Column("member_id", sa.String(64), primary_key=True),
)

members = sa.Table(
    "notify_members", metadata,
    sa.Column("member_id", sa.String(64), primary_key=True),
    # Nullable: a later event (capacity, availability) may be projected before the registration.
    sa.Column("name", sa.String(100)),
    sa.Column("email", sa.String(320)),
    sa.Column("role", sa.String(20)),
    sa.Column("weekly_hours", sa.Float),
    sa.Column("status", sa.String(10), nullable=False, server_default="active"),
    sa.Column("paused_until", sa.Date),
    sa.Column("own_alert_emails", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("daily_digest", sa.Boolean, nullable=False, server_default=sa.true()),
)

memberships = sa.Table(
    "notify_memberships", metadata,
    sa.Column("member_id", sa.String(64), primary_key=True),
    sa.Column("circle_id", sa.String(64), primary_key=True),
)

circles = sa.Table(
    "notify_circles", metadata,
    sa.Column("circle_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(100)),
    sa.Column("parent", sa.String(64)),
)

circle_leads = sa.Table(
    "notify_circle_leads", metadata,
    sa.Column("circle_id", sa.String(64), primary_key=True),
    sa.Column("member_id", sa.String(64), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
)

# One row per signal ever consumed (event_id: a replay finds it and does nothing). `status`:
# waiting (the directory does not know enough yet), planned (deliveries written), failed (could not be
# routed: nobody to tell, or the directory never caught up), nothing_to_send (an all clear whose alert
# reached nobody).
# What the daily digest tells a member (one row per ledger event that concerns her): an exchange someone
# recorded with her that waits for her acknowledgement, or a dispute or withdrawal of one of hers.
# `digest_id` is the digest that told her (NULL: not told yet); `resolved` a waiting one no longer waits.
digest_items = sa.Table(
    "notify_digest_items", metadata,
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("member_id", sa.String(64), nullable=False),  # whom the digest tells
    sa.Column("exchange_id", sa.String(64), nullable=False),
    sa.Column("what", sa.String(12), nullable=False),  # waiting | disputed | withdrawn
    sa.Column("other_id", sa.String(64), nullable=False),  # who recorded, disputed or withdrew it
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("minutes", sa.Integer, nullable=False),
    sa.Column("occurred_on", sa.Date, nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("resolved", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("digest_id", sa.String(36)),
    sa.Index("ix_notify_digest_items_member", "member_id", "digest_id"),
    sa.Index("ix_notify_digest_items_exchange", "exchange_id"),
)

alerts = sa.Table(
    "notify_alerts", metadata,
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("member_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("envelope", sa.Text, nullable=False),  # the envelope's JSON, to plan it again later
    sa.Column("signal_at", sa.DateTime, nullable=False),  # UTC, when balance raised it
    sa.Column("source_partition", sa.Integer, nullable=False),
    sa.Column("source_offset", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("first_seen_at", sa.DateTime, nullable=False),
    sa.Column("resolved_at", sa.DateTime),
    sa.Index("ix_notify_alerts_status", "status"),
)

# The delivery log and the outbox at once: one row per (alert, lead), written with the offsets.
deliveries = sa.Table(
    "notify_deliveries", metadata,
    sa.Column("alert_id", sa.String(36), primary_key=True),
    sa.Column("recipient", sa.String(64), primary_key=True),  # the lead's member id
    sa.Column("member_id", sa.String(64), nullable=False),  # whom the alert is about
    sa.Column("kind", sa.String(20), nullable=False),  # overextended | disconnected | cleared
    sa.Column("signal_type", sa.String(40), nullable=False),
    sa.Column("to_address", sa.String(320)),
    sa.Column("to_name", sa.String(100)),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("text_body", sa.Text, nullable=False),
    sa.Column("html_body", sa.Text, nullable=False),
    sa.Column("status", sa.String(12), nullable=False),  # pending | sent | failed | suppressed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("signal_at", sa.DateTime, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("next_attempt_at", sa.DateTime),
    sa.Column("lease_until", sa.DateTime),
    sa.Column("sent_at", sa.DateTime),
    sa.Index("ix_notify_deliveries_due", "status", "next_attempt_at"),
    sa.Index("ix_notify_deliveries_rate", "recipient", "member_id", "kind", "signal_at"),
)

ALERT_STATUSES = ("waiting", "planned", "failed", "nothing_to_send")
DELIVERY_STATUSES = ("pending", "sent", "failed", "suppressed")


def utcnow() -> datetime:
    """Naive UTC: SQLite has no time zones, so every timestamp column holds naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


# --- engine and schema --------------------------------------------------------------------------

# Engines are reciprocity.common.db.make_engine's (SQLite: WAL, a busy timeout, write transactions BEGIN
# IMMEDIATE so two threads never deadlock upgrading a read lock; reads through `reading` begin deferred).
SCHEMA = Schema(service="notify", migrations=MIGRATIONS, version_table=VERSION_TABLE, metadata=metadata,
                table_prefix="notify_")
migrate = partial(common_db.migrate, schema=SCHEMA)


# --- reads for the HTTP API and metrics ----------------------------------------------------------


def count_by_status(conn: Connection) -> dict[str, int]:
    rows = conn.execute(sa.select(deliveries.c.status, sa.func.count()).group_by(deliveries.c.status)).all()
    counts = dict.fromkeys(DELIVERY_STATUSES, 0)
    counts.update({status: n for status, n in rows})
    for status, n in conn.execute(
        sa.select(alerts.c.status, sa.func.count())
        .where(alerts.c.status.in_(("waiting", "failed")))
        .group_by(alerts.c.status)
    ).all():
        counts[f"alerts_{status}"] = n
    return counts


def list_deliveries(conn: Connection, *, status: str | None = None, member_id: str | None = None,
                    alert_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Deliveries, newest first. Alerts that could not be routed at all (failed) or still wait for the
    directory (waiting) have no delivery row: they are listed too, with recipient None."""
    d = deliveries.c
    query = sa.select(deliveries).order_by(d.created_at.desc(), d.alert_id, d.recipient).limit(limit)
    if status:
        query = query.where(d.status == status)
    if member_id:
        query = query.where(d.member_id == member_id)
    if alert_id:
        query = query.where(d.alert_id == alert_id)
    listed = [_delivery_json(row._mapping) for row in conn.execute(query)] if status != "waiting" else []

    if status in (None, "failed", "waiting"):
        a = alerts.c
        wanted = ("failed", "waiting") if status is None else (status,)
        alert_query = sa.select(alerts).where(a.status.in_(wanted)).order_by(a.first_seen_at.desc()).limit(limit)
        if member_id:
            alert_query = alert_query.where(a.member_id == member_id)
        if alert_id:
            alert_query = alert_query.where(a.event_id == alert_id)
        listed += [_alert_json(row._mapping) for row in conn.execute(alert_query)]
        listed.sort(key=lambda item: item["created_at"] or "", reverse=True)
    return listed[:limit]


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.replace(tzinfo=UTC).isoformat()


def _delivery_json(row: Any) -> dict[str, Any]:
    return {
        "alert_id": row["alert_id"],
        "signal_type": row["signal_type"],
        "kind": row["kind"],
        "member_id": row["member_id"],
        "recipient": row["recipient"],
        "to": row["to_address"],
        "subject": row["subject"],
        "status": row["status"],
        "attempts": row["attempts"],
        "last_error": row["last_error"],
        "signal_at": iso(row["signal_at"]),
        "created_at": iso(row["created_at"]),
        "next_attempt_at": iso(row["next_attempt_at"]) if row["status"] == "pending" else None,
        "sent_at": iso(row["sent_at"]),
    }


def _alert_json(row: Any) -> dict[str, Any]:
    return {
        "alert_id": row["event_id"],
        "signal_type": row["type"],
        "kind": row["kind"],
        "member_id": row["member_id"],
        "recipient": None,
        "to": None,
        "subject": None,
        "status": row["status"],
        "attempts": row["attempts"],
        "last_error": row["reason"],
        "signal_at": iso(row["signal_at"]),
        "created_at": iso(row["first_seen_at"]),
        "next_attempt_at": None,
        "sent_at": None,
    }


def stored_offsets(conn: Connection) -> dict[tuple[str, int], int]:
    return positions.next_offsets(conn)


def rewind_offsets(engine: Engine, topics: Sequence[str] | None = None) -> int:
    """Forget the consumed offsets (all, or of `topics`), so the next start reads from the beginning.

    The directory is rebuilt: the ids of its applied events are forgotten with the offsets, so the
    re-read applies each once again, in log order. Every signal is found in notify_alerts and sends
    nothing. Only while notify is stopped: a running consumer keeps its position until it is reassigned.
    """
    with engine.begin() as conn:
        if topics is None or DIRECTORY.name in topics:
            conn.execute(sa.delete(directory_applied))
        return positions.forget(conn, topics)
