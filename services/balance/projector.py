"""Events -> row deltas: the pure half of the balance projection.

Exchange events carry every fact (giver, receiver, kind, minutes, day, circles), so a batch of events
becomes exchange rows and counter deltas without reading anything but what the store knows of exchanges
recorded in an earlier batch (passed in as `known`). Deltas are aggregated per key here, so the store
writes one row per key per batch with set-based upserts (`x = x + excluded.x`). A member's own numbers
are no counters: they are summed from the exchange rows when read (migration 0009).

A repeated event id is applied once (SPEC): an event whose id was applied before, in this batch, to its
exchange (`known`), or among the directory events (`applied`), is skipped. Only copies re-appended by
hand (a dead letter redriven, say) repeat an id; the ledger never does.

Lifecycle (SPEC): ExchangeRecorded adds pending; ExchangeAcknowledged moves pending to settled;
ExchangeDisputed and ExchangeWithdrawn remove the pending part, so they count nowhere. Every transition
starts from `recorded`; anything else means the log is not what the ledger promises, and the batch
fails (the consumer then stops that partition rather than corrupt the sums).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, cast
from uuid import UUID

from reciprocity.contracts.envelope import Envelope, decode
from reciprocity.contracts.events import (
    AvailabilityChanged,
    CapacityDeclared,
    CircleFormed,
    CircleLeadsChanged,
    Event,
    ExchangeAcknowledged,
    ExchangeCorrected,
    ExchangeDisputed,
    ExchangeFacts,
    ExchangeRecorded,
    ExchangeSharingChanged,
    ExchangeWithdrawn,
    MemberForgotten,
    MemberJoinedCircle,
    MemberLeftCircle,
    MemberRegistered,
)
from reciprocity.contracts.fastcodec import checked_decoder, checked_struct
from reciprocity.contracts.sealed import text_of
from reciprocity.contracts.vocabulary import ACKNOWLEDGED, DISPUTED, RECORDED, WITHDRAWN

# ExchangeRecorded, most of any log, is read as a checked struct (contracts.fastcodec.checked_decoder): the
# model's checks, fields and methods, with no pydantic objects built (a catch-up's largest cost after
# Kafka). Everything else is decoded as usual. Code here tells a recording by `RECORDINGS`, never by
# the model's class alone; typed as the model's class, which the struct stands for (the same fields).
_decode_recording = checked_decoder(ExchangeRecorded)
# The struct first: isinstance() stops at the first class that matches, and the models' checks (ABC
# machinery, pydantic's metaclass) cost more than a plain class's.
RECORDINGS = cast(tuple[type[ExchangeRecorded], ...],
                  (*filter(None, [checked_struct(ExchangeRecorded)]), ExchangeRecorded))
EXCHANGE_EVENTS = cast(tuple[type[ExchangeFacts], ...], (*RECORDINGS, ExchangeFacts))


def decode_for_projection(raw: bytes | str) -> tuple[Any, Any]:
    """The balance consumer's decoder (messaging.consumer.Decoder): ContractError as `decode` raises it."""
    found = _decode_recording(raw)
    return found if found is not None else decode(raw)


# Indexes into the counter lists (same order as tables.CIRCLE_DAY_COUNTERS).
IN_CNT, IN_MIN, X_CNT, X_MIN, P_IN_CNT, P_IN_MIN, P_X_CNT, P_X_MIN = range(8)

# A new exchange's row: the values of these columns of the exchanges table, in this order (the projection
# inserts it so). A list rather than a dict: one is made for every recording, the most frequent event
# (a dict of these 20 keys costs eight times the list), and the store's driver takes it as it is.
EXCHANGE_ROW = ("exchange_id", "giver", "receiver", "kind", "minutes", "note", "occurred_on", "recorded_by",
                "recorded_at", "status", "thanks", "dispute_reason", "shared_by_recorder", "shared_by_acknowledger",
                "giver_circles", "receiver_circles", "updated_at", "recorded_event_id", "status_event_id",
                "correction")
_COLUMN = {name: i for i, name in enumerate(EXCHANGE_ROW)}

# Days in keys are ISO dates as text (see _iso_day).
CircleDayKey = tuple[str, str, str]


class ProjectionError(ValueError):
    """A valid event that cannot be projected: the log broke an invariant (e.g. acknowledging an
    exchange that is not `recorded`). The batch changes nothing and the partition stops."""


@dataclass(frozen=True)
class KnownExchange:
    """An exchange the store holds (recorded in an earlier batch)."""

    status: str
    event_ids: frozenset[str] = frozenset()  # the events applied to it: its recording, its transition
    recorded_by: str = ""  # whose consent to the wall is `shared_by_recorder`


@dataclass
class Deltas:
    circle_day: dict[CircleDayKey, list[int]] = field(default_factory=dict)
    new_exchanges: dict[str, list[Any]] = field(default_factory=dict)  # rows recorded in this batch (EXCHANGE_ROW)
    exchange_updates: dict[str, dict[str, Any]] = field(default_factory=dict)  # rows of earlier batches
    directory: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # ordered operations
    directory_event_ids: list[str] = field(default_factory=list)  # to remember as applied
    touched_members: set[str] = field(default_factory=set)
    repeated: Counter[str] = field(default_factory=Counter)  # per event type: skipped, their id applied before

    @property
    def repeats(self) -> int:
        return sum(self.repeated.values())

    def change(self, exchange_id: str, values: dict[str, Any]) -> None:
        """Change columns of an exchange: in its row if it was recorded in this batch, else as an update."""
        row = self.new_exchanges.get(exchange_id)
        if row is None:
            self.exchange_updates.setdefault(exchange_id, {}).update(values)
        else:
            for column, value in values.items():
                row[_COLUMN[column]] = value


def lifecycle_ids(events: Iterable[Event], *, all_exchanges: bool = False) -> set[str]:
    """Exchange ids the projector needs `known` for: transitions of exchanges not recorded earlier in
    the same batch; with `all_exchanges`, every exchange the batch names (to recognise a recording
    repeated from an earlier batch, which is otherwise left to the store's key to notice)."""
    recorded_here: set[str] = set()
    needed: set[str] = set()
    for event in events:
        if isinstance(event, RECORDINGS) and not all_exchanges:
            recorded_here.add(event.exchange_id)
        elif isinstance(event, EXCHANGE_EVENTS) and event.exchange_id not in recorded_here:
            needed.add(event.exchange_id)
    return needed


def project(items: Iterable[tuple[Envelope, Event]], known: Mapping[str, KnownExchange],
            applied: Collection[str] = (), *, circle_day: dict[CircleDayKey, list[int]] | None = None) -> Deltas:
    """Turn (envelope, event) pairs, in log order, into aggregated deltas. `applied`: ids of directory
    events applied in earlier batches. `circle_day`: counters to add this batch's to (a transaction
    spanning polls sums them over all its polls, and writes each key once); a fresh dict when None."""
    d = Deltas() if circle_day is None else Deltas(circle_day=circle_day)
    status: dict[str, str] = {xid: k.status for xid, k in known.items()}
    # As the UUIDs' integers: hashing an int is done in C (a UUID's __hash__ is Python, formatting one
    # costlier still), and most events never need their id as text.
    seen: set[int] = {UUID(i).int for i in applied}
    for k in known.values():
        seen.update(UUID(i).int for i in k.event_ids)
    recorders: dict[str, str] = {xid: k.recorded_by for xid, k in known.items()}
    for envelope, event in items:
        event_int = envelope.event_id.int
        if event_int in seen:
            d.repeated[envelope.type] += 1
            continue
        seen.add(event_int)
        if isinstance(event, RECORDINGS):  # most events: tested first
            recorders[event.exchange_id] = event.recorded_by
            _recorded(d, status, envelope, str(envelope.event_id), event)
        elif isinstance(event, ExchangeSharingChanged):
            _sharing(d, status, recorders, envelope, event)
        elif isinstance(event, ExchangeCorrected):
            _corrected(d, status, envelope, event)
        elif isinstance(event, ExchangeFacts):
            _transition(d, status, envelope, str(envelope.event_id), event)
        else:
            _directory(d, envelope, event)
            d.directory_event_ids.append(str(envelope.event_id))
    return d


def _sharing(d: Deltas, status: dict[str, str], recorders: dict[str, str], envelope: Envelope,
             e: ExchangeSharingChanged) -> None:
    """A party's consent to the wall, given or taken back: in any status, it moves no minutes. Setting a
    flag is idempotent, so a repeated event changes nothing."""
    xid = e.exchange_id
    if xid not in status:
        raise ProjectionError(f"{envelope.type} of unknown exchange {xid} (event {envelope.event_id})")
    column = "shared_by_recorder" if e.by == recorders.get(xid) else "shared_by_acknowledger"
    d.change(xid, {column: e.shared})


def _corrected(d: Deltas, status: dict[str, str], envelope: Envelope, e: ExchangeCorrected) -> None:
    """A correction of a still-recorded exchange moves its pending minutes from the facts it replaced to
    the corrected ones (day and kind may change), and keeps what changed for the other party to see."""
    xid = e.exchange_id
    if status.get(xid) != RECORDED:
        raise ProjectionError(f"{envelope.type} of exchange {xid} in status {status.get(xid) or 'unknown'} "
                              f"(event {envelope.event_id})")
    before = e.previous
    _move_pending(d, e.model_copy(update={"kind": before.kind, "minutes": before.minutes,
                                          "occurred_on": before.occurred_on}), -1)
    _move_pending(d, e, 1)
    change = {
        # Rows recorded in this batch hold days as text (like every new row); updates take a date.
        "kind": e.kind.value, "minutes": e.minutes, "note": text_of(e.note),
        "occurred_on": _iso_day(e.occurred_on) if xid in d.new_exchanges else e.occurred_on,
        "correction": json.dumps({"event_id": str(envelope.event_id), "at": envelope.occurred_at.isoformat(),
                                  "previous": before.model_dump(mode="json"), "note_changed": e.note_changed}),
    }
    d.change(xid, change)


def _move_pending(d: Deltas, e: ExchangeFacts, sign: int) -> None:
    """Add (sign 1) or take away (-1) one pending exchange with these facts, on the circles' counters
    (the members' numbers follow the exchange row itself)."""
    d.touched_members.update((e.giver, e.receiver))
    _count(d.circle_day, e.giver_circles, e.receiver_circles, _iso_day(e.occurred_on), e.kind._value_, e.minutes,
           sign, False)


def _recorded(d: Deltas, status: dict[str, str], envelope: Envelope, event_id: str, e: ExchangeRecorded) -> None:
    """A new exchange: its row, and its minutes pending on its circles' counters (most events: kept lean)."""
    xid = e.exchange_id
    if xid in status:
        raise ProjectionError(f"exchange {xid} recorded twice (event {event_id})")
    status[xid] = RECORDED
    day, kind, minutes = _iso_day(e.occurred_on), e.kind._value_, e.minutes  # _value_: an attribute
    giver, receiver, at, gc, rc = e.giver, e.receiver, envelope.occurred_at, e.giver_circles, e.receiver_circles
    d.new_exchanges[xid] = [  # EXCHANGE_ROW
        xid, giver, receiver, kind, minutes, text_of(e.note), day, e.recorded_by, at, RECORDED, None, None, e.shared,
        False, _circles_json(gc), _circles_json(rc), at, event_id, None, None,
    ]  # fmt: skip
    touched = d.touched_members
    touched.add(giver)
    touched.add(receiver)
    _count(d.circle_day, gc, rc, day, kind, minutes, 1, False)


def _transition(d: Deltas, status: dict[str, str], envelope: Envelope, event_id: str, e: ExchangeFacts) -> None:
    """An exchange leaves `recorded`: acknowledged (its minutes settle), disputed or withdrawn (they
    count nowhere); its pending minutes leave the circles' counters either way."""
    xid = e.exchange_id
    change: dict[str, Any]
    current = status.get(xid)
    if current != RECORDED:
        raise ProjectionError(f"{envelope.type} of exchange {xid} in status {current or 'unknown'} (event {event_id})")
    if isinstance(e, ExchangeAcknowledged):
        new, change = ACKNOWLEDGED, {"thanks": text_of(e.thanks) or None, "shared_by_acknowledger": e.shared}
        settle = True
    elif isinstance(e, ExchangeDisputed):
        new, change, settle = DISPUTED, {"dispute_reason": e.reason.text or None}, False
    elif isinstance(e, ExchangeWithdrawn):
        new, change, settle = WITHDRAWN, {}, False
    else:  # a new exchange event type the projection does not know yet: refuse rather than guess
        raise ProjectionError(f"no projection for {envelope.type}")
    status[xid] = new
    d.change(xid, {"status": new, "updated_at": envelope.occurred_at, "status_event_id": event_id, **change})
    d.touched_members.add(e.giver)
    d.touched_members.add(e.receiver)
    _count(d.circle_day, e.giver_circles, e.receiver_circles, _iso_day(e.occurred_on), e.kind._value_, e.minutes,
           -1, settle)


def _count(counters: dict[CircleDayKey, list[int]], gc: list[str], rc: list[str], day: str, kind: str, minutes: int,
           sign: int, settle: bool) -> None:
    """One exchange on its circles' counters: `sign` 1 adds it pending, -1 takes it from pending, and
    `settle` adds it settled; inside a circle both parties are in, crossing one where one of them is."""
    pending = sign * minutes
    for circle in set(gc).union(rc):
        key = (circle, day, kind)
        row = counters.get(key)
        if row is None:
            row = counters[key] = [0] * 8
        if circle in gc and circle in rc:
            row[P_IN_CNT] += sign
            row[P_IN_MIN] += pending
            if settle:
                row[IN_CNT] += 1
                row[IN_MIN] += minutes
        else:
            row[P_X_CNT] += sign
            row[P_X_MIN] += pending
            if settle:
                row[X_CNT] += 1
                row[X_MIN] += minutes


_ISO_DAYS: dict[date, str] = {}


def _iso_day(day: date) -> str:
    """Days are keyed as ISO text ('2026-03-01'): what SQLite stores and PostgreSQL casts, converted
    once per event rather than once per row written."""
    found = _ISO_DAYS.get(day)
    if found is None:
        if len(_ISO_DAYS) > 10_000:
            _ISO_DAYS.clear()
        found = _ISO_DAYS[day] = day.isoformat()
    return found


_CIRCLES_JSON: dict[tuple[str, ...], str] = {}


def _circles_json(circles: list[str]) -> str:
    """JSON of a circle list, memoised: members' circle lists repeat across thousands of events."""
    key = tuple(circles)
    found = _CIRCLES_JSON.get(key)
    if found is None:
        if len(_CIRCLES_JSON) > 100_000:
            _CIRCLES_JSON.clear()
        found = _CIRCLES_JSON[key] = json.dumps(sorted(set(circles)))
    return found


def _directory(d: Deltas, envelope: Envelope, e: Event) -> None:
    day = envelope.occurred_at.date()
    if isinstance(e, CircleFormed):
        policy = e.policy.model_dump(mode="json", exclude_none=True) if e.policy else None
        d.directory.append(("circle", {"circle_id": e.circle_id, "name": e.name, "parent": e.parent,
                                       "policy": json.dumps(policy) if policy else None}))
    elif isinstance(e, CircleLeadsChanged):
        d.directory.append(("leads", {"circle_id": e.circle_id, "leads": json.dumps(list(dict.fromkeys(e.leads)))}))
    elif isinstance(e, MemberRegistered):
        d.directory.append(("member", {"member_id": e.member_id, "name": e.name.text, "email": e.email.text,
                                       "role": e.role.value, "registered_on": day,
                                       "circles": sorted(set(e.circles))}))
        d.touched_members.add(e.member_id)
    elif isinstance(e, MemberJoinedCircle):
        d.directory.append(("join", {"member_id": e.member_id, "circle_id": e.circle_id}))
        d.touched_members.add(e.member_id)
    elif isinstance(e, MemberLeftCircle):
        d.directory.append(("leave", {"member_id": e.member_id, "circle_id": e.circle_id}))
        d.touched_members.add(e.member_id)
    elif isinstance(e, CapacityDeclared):
        d.directory.append(("capacity", {"member_id": e.member_id, "weekly_hours": e.weekly_hours}))
        d.touched_members.add(e.member_id)
    elif isinstance(e, AvailabilityChanged):
        # Resumed: available from that day; a pause with an end: from the day after it; open-ended: not yet.
        back = day if e.status == "active" else e.paused_until + timedelta(days=1) if e.paused_until else None
        d.directory.append(("availability", {"member_id": e.member_id, "status": e.status,
                                             "paused_until": e.paused_until, "available_since": back}))
        d.touched_members.add(e.member_id)
    elif isinstance(e, MemberForgotten):
        d.directory.append(("forget", {"member_id": e.member_id, "event_id": str(envelope.event_id),
                                       "forgotten_at": envelope.occurred_at, "requested_by": e.requested_by}))
        d.touched_members.add(e.member_id)
    # Signal events (balance.signals) are not on the topics this projection reads; anything else
    # arriving here is ignored on purpose: a directory fact the read models have no column for.
