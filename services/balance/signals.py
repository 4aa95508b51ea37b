"""Signals: the alert policy applied to the read models, with an outbox in front of Kafka.

After each batch (and on a scheduled sweep, for disconnection, which time alone can cause) the members
concerned are evaluated with `policy.decide`. A transition updates `balance_signal_state` and the
signal history and puts the event into `balance_outbox`, all in the projection's transaction. After
the commit the outbox is appended to `balance.signals` (a plain idempotent producer) and emptied; what
fails to go out stays and is retried by the next publish, so no signal is lost.

Event ids are deterministic: uuid5(member, kind, window start) for a raise, uuid5(member,
"<kind>.cleared", window start of the raise) for its clearing. Whoever computes a signal again (a
retry, a second balance process, a replay) produces the identical event, and notify dedupes on it.

Signal state is not per generation: it mirrors what was published. A replay therefore evaluates no
policy while it builds (it would judge members on half-projected numbers); after the switch the live
service evaluates against the new generation with the state it already had.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from reciprocity.common.bulk_sql import dialect_insert
from reciprocity.contracts.envelope import Envelope, encode, wrap
from reciprocity.contracts.events import (
    Event,
    MemberDisconnected,
    MemberOverextended,
    SignalCleared,
    SignalEvent,
)
from reciprocity.contracts.ids import signal_event_id
from reciprocity.contracts.topics import SIGNALS
from reciprocity.contracts.vocabulary import ACKNOWLEDGED, DISCONNECTED, OVEREXTENDED, RECORDED
from reciprocity.messaging.consumer import PartitionKey
from reciprocity.messaging.event_log import EventLog, Outgoing
from sqlalchemy.engine import Connection, Engine

from . import metrics
from . import tables as t
from .policy import (
    CAPACITY_WINDOW_DAYS,
    DEFAULT_POLICY,
    OVEREXTENSION_WINDOW_DAYS,
    MemberActivity,
    Policy,
    Transition,
    decide,
    is_paused,
    policy_for,
)
from .queries import last_day_anywhere

log = logging.getLogger(__name__)

_CHUNK = 500
PRODUCER = "balance"
_RAISE_TYPES = {OVEREXTENDED: MemberOverextended, DISCONNECTED: MemberDisconnected}
_KIND_OF_TYPE = {"MemberOverextended": OVEREXTENDED, "MemberDisconnected": DISCONNECTED}


def raise_event_id(member_id: str, kind: str, window_start: date) -> str:
    return str(signal_event_id(member_id, kind, window_start.isoformat()))


def clear_event_id(member_id: str, kind: str, window_start: date) -> str:
    return str(signal_event_id(member_id, f"{kind}.cleared", window_start.isoformat()))


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i:i + _CHUNK]


def gather_facts(conn: Connection, gen: int, member_ids: Iterable[str] | None, today: date,
                 ) -> tuple[list[MemberActivity], dict[str, list[str]], dict[str, Policy]]:
    """Facts, circles and policy of the given members (all registered members when None)."""
    m, ms, x = t.members.c, t.memberships.c, t.exchanges.c
    d28 = today - timedelta(days=OVEREXTENSION_WINDOW_DAYS - 1)
    d7 = today - timedelta(days=CAPACITY_WINDOW_DAYS - 1)
    wanted = None if member_ids is None else sorted(set(member_ids))
    batches: Iterable[Sequence[str] | None] = [None] if wanted is None else _chunks(wanted)

    circle_policies = {
        r.circle_id: (json.loads(r.policy) if r.policy else None)
        for r in conn.execute(sa.select(t.circles.c.circle_id, t.circles.c.policy).where(t.circles.c.generation == gen))
    }
    facts: list[MemberActivity] = []
    circles_of: dict[str, list[str]] = {}
    policies: dict[str, Policy] = {}
    # Settled minutes from the exchanges; pending ones are added below only where the giver recorded them
    # (SPEC, Alert policy): an exchange recorded by its receiver counts once acknowledged, so that nobody
    # can raise an alert about someone else by recording what they "received". Every sum is a range of
    # the (generation, giver|receiver, occurred_on, ...) index per member, which covers it.
    settled_in_window = sa.and_(x.generation == gen, x.status == ACKNOWLEDGED, x.occurred_on >= d28,
                                x.occurred_on <= last_day_anywhere(today))
    for chunk in batches:
        def only(col: sa.ColumnElement, chunk: Sequence[str] | None = chunk) -> sa.ColumnElement[bool]:
            return col.in_(chunk) if chunk is not None else sa.true()

        people = conn.execute(
            sa.select(t.members, _last_exchange_on(x.giver, gen, today).label("last_given"),
                      _last_exchange_on(x.receiver, gen, today).label("last_received"))
            .where(m.generation == gen, only(m.member_id)).order_by(m.member_id)).all()
        if not people:
            continue
        for r in conn.execute(sa.select(ms.member_id, ms.circle_id).where(ms.generation == gen, only(ms.member_id))):
            circles_of.setdefault(r.member_id, []).append(r.circle_id)
        given = {r.giver: (int(r.g28 or 0), int(r.g7 or 0)) for r in conn.execute(
            sa.select(x.giver, sa.func.sum(x.minutes).label("g28"),
                      sa.func.sum(sa.case((x.occurred_on >= d7, x.minutes), else_=0)).label("g7"))
            .where(settled_in_window, only(x.giver)).group_by(x.giver))}
        received = {r.receiver: int(r.r28 or 0) for r in conn.execute(
            sa.select(x.receiver, sa.func.sum(x.minutes).label("r28"))
            .where(settled_in_window, only(x.receiver)).group_by(x.receiver))}
        pending_given, pending_received = _pending_recorded_by_giver(conn, gen, chunk, d28, d7, today)
        for p in people:
            last_day = max(filter(None, (_as_day(p.last_given), _as_day(p.last_received))), default=None)
            circles = sorted(circles_of.get(p.member_id, []))
            circles_of[p.member_id] = circles
            policies[p.member_id] = policy_for([circle_policies.get(c) for c in circles], DEFAULT_POLICY)
            g28, g7 = given.get(p.member_id, (0, 0))
            pg28, pg7 = pending_given.get(p.member_id, (0, 0))
            facts.append(MemberActivity(
                member_id=p.member_id,
                given_28=g28 + pg28,
                received_28=received.get(p.member_id, 0) + pending_received.get(p.member_id, 0),
                given_7=g7 + pg7,
                weekly_hours=p.weekly_hours,
                paused=is_paused(p.status, p.paused_until, today),
                last_exchange_on=last_day,
                registered_on=p.registered_on,
                available_since=p.available_since,
            ))  # fmt: skip
    return facts, circles_of, policies


def _last_exchange_on(side: sa.Column, gen: int, today: date) -> sa.ScalarSelect:
    """The latest day (up to the last day anywhere) of an exchange that counts (recorded or acknowledged)
    on this side of the member in the enclosing query's row: the newest entry of the side's index that
    is one, found from its end rather than by reading the member's whole history."""
    x = t.exchanges.c
    return (sa.select(x.occurred_on)
            .where(x.generation == gen, side == t.members.c.member_id, x.occurred_on <= last_day_anywhere(today),
                   x.status.in_((RECORDED, ACKNOWLEDGED)))
            .order_by(x.occurred_on.desc()).limit(1).scalar_subquery())


def _as_day(value: Any) -> date | None:
    if isinstance(value, str):  # SQLite may hand a date back as its text
        return date.fromisoformat(value[:10])
    return value


def _pending_recorded_by_giver(conn: Connection, gen: int, chunk: Sequence[str] | None, d28: date, d7: date,
                               today: date) -> tuple[dict[str, tuple[int, int]], dict[str, int]]:
    """Minutes of still-pending exchanges that their giver recorded, in the 28-day window: per giver
    (28 days, 7 days) and per receiver (28 days). Read from the exchanges table through its
    (generation, giver|receiver, occurred_on) indexes."""
    x = t.exchanges.c
    in_window = sa.and_(x.generation == gen, x.status == RECORDED, x.recorded_by == x.giver,
                        x.occurred_on >= d28, x.occurred_on <= last_day_anywhere(today))
    by_giver = sa.select(
        x.giver, sa.func.sum(x.minutes).label("m28"),
        sa.func.sum(sa.case((x.occurred_on >= d7, x.minutes), else_=0)).label("m7"),
    ).where(in_window).group_by(x.giver)
    by_receiver = sa.select(x.receiver, sa.func.sum(x.minutes).label("m28")).where(in_window).group_by(x.receiver)
    if chunk is not None:
        by_giver = by_giver.where(x.giver.in_(chunk))
        by_receiver = by_receiver.where(x.receiver.in_(chunk))
    given = {r.giver: (int(r.m28 or 0), int(r.m7 or 0)) for r in conn.execute(by_giver)}
    received = {r.receiver: int(r.m28 or 0) for r in conn.execute(by_receiver)}
    return given, received


class SignalEngine:
    """Decides transitions. With `settle_s` > 0, the members a batch touched are evaluated once the
    stream has been quiet for `settle_s` (or, under a steady stream, `max_defer_s` after the first of
    them): a signal should reflect a settled state, not a burst in flight. A history recorded in bulk
    (a roster import with months of past exchanges, the demo seed) would otherwise raise and clear
    alerts for numbers that were true only halfway through it. What is pending here is only in memory:
    after a crash the start-up sweep evaluates everyone."""

    def __init__(self, *, clock: Callable[[], date], now: Callable[[], datetime] | None = None,
                 settle_s: float = 0.0, max_defer_s: float = 30.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.now = now or (lambda: datetime.now(UTC))
        self.settle_s = settle_s
        self.max_defer_s = max_defer_s
        self._monotonic = monotonic
        self._unsettled: set[str] = set()
        self._unsettled_since: float | None = None
        self._last_touch = 0.0
        self._lock = threading.Lock()
        # Until the projection has caught up with the log as it was at start, members would be judged
        # on half-projected numbers (everyone looks disconnected): no evaluation before that.
        self.catch_up_targets: dict[PartitionKey, int] | None = None
        self.caught_up = True

    def hold_until(self, targets: Mapping[PartitionKey, int]) -> None:
        self.catch_up_targets = dict(targets)
        self.caught_up = not any(targets.values())

    def after_batch(self, conn: Connection, gen: int, touched: set[str]) -> int:
        if not self.caught_up:
            if not self.reached_targets(conn, gen):
                return 0
            self.caught_up = True
            log.info("caught up with the log: evaluating every member")
            return self.evaluate(conn, gen, None)
        if not touched:
            return 0
        if self.settle_s <= 0:
            return self.evaluate(conn, gen, touched)
        with self._lock:
            self._unsettled |= touched
            self._last_touch = self._monotonic()
            if self._unsettled_since is None:
                self._unsettled_since = self._last_touch
        return 0

    def take_settled(self) -> set[str]:
        """The members whose numbers have settled, now due for evaluation (removed from the waiting set)."""
        with self._lock:
            if not self._unsettled or self._unsettled_since is None:
                return set()
            now = self._monotonic()
            if now - self._last_touch < self.settle_s and now - self._unsettled_since < self.max_defer_s:
                return set()
            due, self._unsettled, self._unsettled_since = self._unsettled, set(), None
            return due

    def give_back(self, members: set[str]) -> None:
        """Members whose evaluation failed: due again at the next check."""
        with self._lock:
            self._unsettled |= members
            if self._unsettled_since is None:
                self._unsettled_since = self._monotonic() - self.max_defer_s

    def reached_targets(self, conn: Connection, gen: int) -> bool:
        stored = t.positions.next_offsets(conn, generation=gen)
        return all(stored.get(key, 0) >= end for key, end in (self.catch_up_targets or {}).items())

    def sweep(self, conn: Connection, gen: int) -> int:
        """Evaluate every member, once the projection has caught up (the scheduled sweep)."""
        if not self.caught_up:
            if not self.reached_targets(conn, gen):
                return 0
            self.caught_up = True
        return self.evaluate(conn, gen, None)

    def evaluate(self, conn: Connection, gen: int, member_ids: Iterable[str] | None) -> int:
        """Decide and record every transition for these members (all when None); returns how many."""
        today = self.clock()
        facts, circles_of, policies = gather_facts(conn, gen, member_ids, today)
        if not facts:
            return 0
        states = self._states(conn, [f.member_id for f in facts])
        count = 0
        for f in facts:
            mine = states.get(f.member_id, {})
            active = {kind: bool(row["active"]) for kind, row in mine.items()}
            for tr in decide(f, policies[f.member_id], active, today):
                if tr.raise_:
                    self._raise(conn, f.member_id, circles_of.get(f.member_id, []), tr)
                else:
                    self._clear(conn, f.member_id, circles_of.get(f.member_id, []), tr, mine[tr.kind])
                count += 1
        return count

    def _states(self, conn: Connection, member_ids: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
        found: dict[str, dict[str, dict[str, Any]]] = {}
        s = t.signal_state.c
        for chunk in _chunks(sorted(member_ids)):
            for r in conn.execute(sa.select(t.signal_state).where(s.member_id.in_(chunk))).mappings():
                found.setdefault(r["member_id"], {})[r["kind"]] = dict(r)
        return found

    def _raise(self, conn: Connection, member_id: str, circles: list[str], tr: Transition) -> None:
        event_id = raise_event_id(member_id, tr.kind, tr.window_start)
        common: dict[str, Any] = {"member_id": member_id, "circles": circles, "window_start": tr.window_start,
                  "window_end": tr.window_end}
        if tr.kind == OVEREXTENDED:
            event: SignalEvent = MemberOverextended(**common, **tr.details)
        else:
            last = tr.details["last_exchange_on"]
            event = MemberDisconnected(**common, last_exchange_on=date.fromisoformat(last) if last else None,
                                       days_without_exchange=tr.details["days_without_exchange"])
        now = self.now()
        envelope = wrap(event, producer=PRODUCER, event_id=_uuid(event_id), occurred_at=now)
        self._set_state(conn, member_id, tr.kind, True, event_id, tr.window_start, now)
        record_raised(conn, envelope, event, now)
        self._outbox(conn, envelope, now)
        metrics.SIGNALS_DECIDED.labels(event.TYPE).inc()
        log.info("signal %s for %s (%s)", event.TYPE, member_id, event_id)

    def _clear(self, conn: Connection, member_id: str, circles: list[str], tr: Transition,
               state: Mapping[str, Any]) -> None:
        raised_start = state["window_start"]
        if isinstance(raised_start, str):
            raised_start = date.fromisoformat(raised_start)
        event_id = clear_event_id(member_id, tr.kind, raised_start)
        event = SignalCleared(member_id=member_id, circles=circles, window_start=raised_start,
                              window_end=tr.window_end, signal_kind=tr.kind,  # type: ignore[arg-type]
                              raised_event_id=state["raised_event_id"], reason=tr.details.get("why"))
        now = self.now()
        envelope = wrap(event, producer=PRODUCER, event_id=_uuid(event_id), occurred_at=now)
        self._set_state(conn, member_id, tr.kind, False, state["raised_event_id"], raised_start, now)
        record_cleared(conn, envelope, event, now)
        self._outbox(conn, envelope, now)
        metrics.SIGNALS_DECIDED.labels(event.TYPE).inc()
        log.info("signal %s cleared for %s (%s)", tr.kind, member_id, event_id)

    @staticmethod
    def _set_state(conn: Connection, member_id: str, kind: str, active: bool, raised_event_id: str | None,
                   window_start: date, now: datetime) -> None:
        set_state(conn, member_id, kind, active, raised_event_id, window_start, now)

    @staticmethod
    def _outbox(conn: Connection, envelope: Envelope, now: datetime) -> None:
        stmt = dialect_insert(conn, t.outbox).values(
            event_id=str(envelope.event_id), topic=SIGNALS.name, key=envelope.key, value=encode(envelope),
            created_at=now,
        )
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["event_id"]))


def _uuid(value: str) -> uuid.UUID:
    return uuid.UUID(value)


def set_state(conn: Connection, member_id: str, kind: str, active: bool, raised_event_id: str | None,
              window_start: date, now: datetime) -> None:
    stmt = dialect_insert(conn, t.signal_state).values(
        member_id=member_id, kind=kind, active=active, raised_event_id=raised_event_id,
        window_start=window_start, updated_at=now,
    )
    conn.execute(stmt.on_conflict_do_update(
        index_elements=["member_id", "kind"],
        set_={"active": stmt.excluded.active, "raised_event_id": stmt.excluded.raised_event_id,
              "window_start": stmt.excluded.window_start, "updated_at": stmt.excluded.updated_at},
    ))


def _details(event: Event) -> dict[str, Any]:
    common = {"member_id", "circles", "window_start", "window_end"}
    return {k: v for k, v in event.model_dump(mode="json").items() if k not in common}


def record_raised(conn: Connection, envelope: Envelope, event: SignalEvent, at: datetime) -> None:
    stmt = dialect_insert(conn, t.signals).values(
        event_id=str(envelope.event_id), type=event.TYPE, member_id=event.member_id,
        circles=json.dumps(list(event.circles)), raised_at=at, window_start=event.window_start,
        window_end=event.window_end, details=json.dumps(_details(event)), active=True,
    )
    # The same raise again (same member, kind and window start, e.g. raised, cleared and raised on
    # one day) reopens the episode under its deterministic id.
    conn.execute(stmt.on_conflict_do_update(
        index_elements=["event_id"],
        set_={"active": True, "cleared_at": None, "cleared_event_id": None, "details": stmt.excluded.details,
              "window_end": stmt.excluded.window_end},
    ))


def record_cleared(conn: Connection, envelope: Envelope, event: SignalCleared, at: datetime) -> None:
    conn.execute(
        sa.update(t.signals)
        .where(t.signals.c.event_id == event.raised_event_id)
        .values(active=False, cleared_at=at, cleared_event_id=str(envelope.event_id))
    )


def restore_from_log(engine: Engine, items: Iterable[tuple[Envelope, Event]]) -> int:
    """Rebuild signal state and history from `balance.signals` (a fresh database over an old log), so
    a fresh projection re-raises nothing that was already raised. Returns the events read."""
    count = 0
    with engine.begin() as conn:
        for envelope, event in items:
            at = envelope.occurred_at
            if isinstance(event, MemberOverextended | MemberDisconnected):
                kind = _KIND_OF_TYPE[event.TYPE]
                record_raised(conn, envelope, event, at)
                set_state(conn, event.member_id, kind, True, str(envelope.event_id), event.window_start, at)
            elif isinstance(event, SignalCleared):
                record_cleared(conn, envelope, event, at)
                set_state(conn, event.member_id, event.signal_kind, False, event.raised_event_id,
                          event.window_start, at)
            else:
                continue
            count += 1
    return count


class OutboxPublisher:
    """Appends outbox rows to balance.signals in id order and deletes what Kafka took."""

    def __init__(self, engine: Engine, event_log: EventLog, batch: int = 500) -> None:
        self.engine = engine
        self.event_log = event_log
        self.batch = batch
        self._lock = threading.Lock()  # the consumer thread and the sweep thread both publish

    def publish(self) -> int:
        sent = 0
        with self._lock:
            while True:
                with self.engine.connect() as conn:
                    rows = conn.execute(sa.select(t.outbox).order_by(t.outbox.c.id).limit(self.batch)).all()
                if not rows:
                    break
                self.event_log.append([Outgoing(topic=r.topic, key=r.key.encode(), value=bytes(r.value)) for r in rows])
                with self.engine.begin() as conn:
                    conn.execute(sa.delete(t.outbox).where(t.outbox.c.id.in_([r.id for r in rows])))
                sent += len(rows)
                metrics.SIGNALS_PUBLISHED.inc(len(rows))
            metrics.OUTBOX_PENDING.set(0)
        return sent

    def pending(self) -> int:
        with self.engine.connect() as conn:
            n = int(conn.execute(sa.select(sa.func.count()).select_from(t.outbox)).scalar() or 0)
        metrics.OUTBOX_PENDING.set(n)
        return n
