"""The balance read models as SQLAlchemy Core tables.

Every read-model table carries a `generation` as the first column of its key: a replay builds a whole
new generation beside the active one (blue/green) and switches `balance_generations.status` in one
transaction. Signal state, signal history and the outbox are NOT per generation: they record what was
published to `balance.signals`, which a replay must neither forget nor repeat.

The counter table (circle x day) is WITHOUT ROWID on SQLite: clustered on its key, so an upsert touches
one B-tree instead of two (the projection's hot path). A member's own numbers have no counter table: they
are summed from their side of the exchanges, through the covering indexes below (migration 0009).
The exchanges stay a rowid table: wide rows with random ids append at the end and only the narrow key
index takes random inserts.

The schema itself is created by the alembic migrations under `migrations/`; this module is what the
code reads and writes (a test checks that both agree).
"""

import sqlalchemy as sa
from reciprocity.messaging.tracking import OffsetStore

metadata = sa.MetaData()

generations = sa.Table(
    "balance_generations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    # building -> active -> retired; exactly one row is active.
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("activated_at", sa.DateTime(timezone=True)),
)

offsets = sa.Table(
    "balance_offsets",
    metadata,
    sa.Column("generation", sa.Integer, primary_key=True),
    sa.Column("topic", sa.String(200), primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("next_offset", sa.BigInteger, nullable=False),
    sa.Column("last_event_at", sa.DateTime(timezone=True)),
)
# The projection's positions, one set per generation (reciprocity.messaging.tracking).
positions = OffsetStore(offsets)

def _counter(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger, nullable=False, server_default="0")


# circle x day x kind: exchanges inside the circle (both parties in it) and crossing its boundary (one
# party in it), by the circles each party had when the exchange was recorded.
CIRCLE_DAY_COUNTERS = (
    "inside_count", "inside_minutes", "crossing_count", "crossing_minutes",
    "pending_inside_count", "pending_inside_minutes", "pending_crossing_count", "pending_crossing_minutes",
)  # fmt: skip
circle_day = sa.Table(
    "balance_circle_day",
    metadata,
    sa.Column("generation", sa.Integer, primary_key=True),
    sa.Column("circle_id", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    *[_counter(c) for c in CIRCLE_DAY_COUNTERS],
    sqlite_with_rowid=False,
)

exchanges = sa.Table(
    "balance_exchanges",
    metadata,
    sa.Column("generation", sa.Integer, primary_key=True),
    sa.Column("exchange_id", sa.String(64), primary_key=True),
    sa.Column("giver", sa.String(64), nullable=False),
    sa.Column("receiver", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("minutes", sa.Integer, nullable=False),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
    sa.Column("occurred_on", sa.Date, nullable=False),
    sa.Column("recorded_by", sa.String(64), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("thanks", sa.Text),
    sa.Column("dispute_reason", sa.Text),
    sa.Column("shared_by_recorder", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("shared_by_acknowledger", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("giver_circles", sa.Text, nullable=False, server_default="[]"),  # JSON list
    sa.Column("receiver_circles", sa.Text, nullable=False, server_default="[]"),  # JSON list
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("recorded_event_id", sa.String(36), nullable=False),
    # The event that moved it out of `recorded`: with recorded_event_id, what a repeat is recognised by.
    sa.Column("status_event_id", sa.String(36)),
    # The latest correction by its recorder, as JSON: {"event_id", "at", "previous": {kind, minutes,
    # occurred_on}, "note_changed"}; NULL when never corrected. Its event id is also what a repeat of it
    # is recognised by.
    sa.Column("correction", sa.Text),
)
# A member's side of the exchanges by day, covering what flows and counters are summed from (the other
# party, kind, status, minutes): a member's summary, timeline and alert facts, relationships and a
# circle's flows over a window are a range of one index, read without touching the table (migrations
# 0007, 0009); a history page is a range of it too.
EXCHANGE_SIDE_INDEX_TAIL = ("kind", "status", "minutes")
# They are also what a batch's random keys dirty pages all over (more so as the store grows): a catch-up
# into a store without exchanges builds them once at its end instead (projection.SideIndexes).
EXCHANGE_SIDE_INDEXES = (
    sa.Index("ix_balance_exchanges_giver", exchanges.c.generation, exchanges.c.giver, exchanges.c.occurred_on,
             exchanges.c.receiver, *(exchanges.c[c] for c in EXCHANGE_SIDE_INDEX_TAIL)),
    sa.Index("ix_balance_exchanges_receiver", exchanges.c.generation, exchanges.c.receiver,
             exchanges.c.occurred_on, exchanges.c.giver, *(exchanges.c[c] for c in EXCHANGE_SIDE_INDEX_TAIL)),
)
# The appreciation wall, newest first then by id: only the exchanges on it, in the wall's order (migrations
# 0004, 0010 and queries.appreciations).
ON_THE_WALL = "status = 'acknowledged' AND shared_by_recorder AND shared_by_acknowledger"
sa.Index("ix_balance_exchanges_wall", exchanges.c.generation, exchanges.c.updated_at, exchanges.c.exchange_id,
         sqlite_where=sa.text(ON_THE_WALL), postgresql_where=sa.text(ON_THE_WALL))

members = sa.Table(
    "balance_members",
    metadata,
    sa.Column("generation", sa.Integer, primary_key=True),
    sa.Column("member_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("weekly_hours", sa.Float),
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),
    sa.Column("paused_until", sa.Date),
    sa.Column("registered_on", sa.Date, nullable=False),
    # The first day available again after the latest pause: silence is counted from there, not through it.
    sa.Column("available_since", sa.Date),
)

memberships = sa.Table(
    "balance_memberships",
    metadata,
    sa.Column("generation", sa.Integer, primary_key=True),
    sa.Column("circle_id", sa.String(64), primary_key=True),
    sa.Column("member_id", sa.String(64), primary_key=True),
)
sa.Index("ix_balance_memberships_member", memberships.c.generation, memberships.c.member_id)

circles = sa.Table(
    "balance_circles",
    metadata,
    sa.Column("generation", sa.Integer, primary_key=True),
    sa.Column("circle_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("parent", sa.String(64)),
    sa.Column("leads", sa.Text, nullable=False, server_default="[]"),  # JSON list of member ids
    sa.Column("policy", sa.Text),  # JSON of PolicyOverrides, or NULL
)

# Directory events applied to a generation, so a repeated event id is applied once (SPEC). Exchange
# events need no such list: their row names the events applied to it (recorded_event_id, status_event_id).
directory_applied = sa.Table(
    "balance_directory_applied",
    metadata,
    sa.Column("generation", sa.Integer, primary_key=True),
    sa.Column("event_id", sa.String(36), primary_key=True),
    sqlite_with_rowid=False,
)

# Members forgotten (MemberForgotten): their name, email and every note, thanks and reason on their
# exchanges are blanked; their counters stay, so everyone's measures are unchanged.
forgotten = sa.Table(
    "balance_forgotten",
    metadata,
    sa.Column("generation", sa.Integer, primary_key=True),
    sa.Column("member_id", sa.String(64), primary_key=True),
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Column("forgotten_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("requested_by", sa.String(64), nullable=False),
)

# The current episode of each (member, signal kind): what has been published, across generations.
signal_state = sa.Table(
    "balance_signal_state",
    metadata,
    sa.Column("member_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),  # overextended | disconnected
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("raised_event_id", sa.String(36)),
    sa.Column("window_start", sa.Date),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# Every episode ever raised (for GET /v1/signals), keyed by the raising event's id.
signals = sa.Table(
    "balance_signals",
    metadata,
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("member_id", sa.String(64), nullable=False),
    sa.Column("circles", sa.Text, nullable=False, server_default="[]"),
    sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("window_start", sa.Date, nullable=False),
    sa.Column("window_end", sa.Date, nullable=False),
    sa.Column("details", sa.Text, nullable=False, server_default="{}"),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("cleared_at", sa.DateTime(timezone=True)),
    sa.Column("cleared_event_id", sa.String(36)),
)
sa.Index("ix_balance_signals_member", signals.c.member_id)

# Signals decided in a projection transaction, appended to Kafka after the commit, then deleted.
outbox = sa.Table(
    "balance_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(36), nullable=False, unique=True),
    sa.Column("topic", sa.String(200), nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("value", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# Tables whose rows belong to a generation (what a replay fills and later deletes).
GENERATION_TABLES = (offsets, circle_day, exchanges, members, memberships, circles,
                     directory_applied, forgotten)
