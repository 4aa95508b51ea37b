"""Read-side queries over the active generation, returning the JSON shapes of the balance read API."""

from __future__ import annotations

import base64
import functools
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from reciprocity.contracts.vocabulary import ACKNOWLEDGED, EXCHANGE_KINDS, RECORDED
from sqlalchemy.engine import Connection

from . import measures
from . import tables as t
from .policy import CAPACITY_WINDOW_DAYS, is_paused


def _day(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def iso_time(value: Any) -> str | None:
    """A stored time (or day) as ISO text, UTC."""
    return _iso(value)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        # SQLite keeps datetimes without their zone; every one we store is UTC.
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def window_bounds(today: date, days: int) -> tuple[date, date]:
    """The last `days` days up to `today` (what the API reports; rows are read up to last_day_anywhere)."""
    return today - timedelta(days=days - 1), today


def last_day_anywhere(today: date) -> date:
    """The last day a window reads rows of: the ledger takes dates up to the latest calendar day
    anywhere (UTC+14), so a member east of UTC records their today before UTC's begins, and it must
    count at once rather than some hours later."""
    return today + timedelta(days=1)


# How a forgotten member is shown: their name is gone (MemberForgotten), their exchanges still count.
FORMER_MEMBER = "a former member"


# The statements every read request runs are built once, with bound parameters (`gen`, `member`, ...):
# building a SELECT through SQLAlchemy's operators cost more CPU than the database spent answering it.
_GEN: sa.BindParameter[int] = sa.bindparam("gen")
_MEMBER: sa.BindParameter[str] = sa.bindparam("member")
_NAMES_OF = (sa.select(t.members.c.member_id, t.members.c.name)
             .where(t.members.c.generation == _GEN, t.members.c.member_id.in_(sa.bindparam("ids", expanding=True))))


def member_names(conn: Connection, gen: int, ids: Iterable[str] | None = None) -> dict[str, str]:
    m = t.members.c
    if ids is not None:
        ids = sorted(set(ids))
        if not ids:
            return {}
        # One expanding parameter: the statement is cached once, not coerced element by element (a
        # busy member's relationships name a couple of hundred people).
        return {r.member_id: r.name or FORMER_MEMBER for r in conn.execute(_NAMES_OF, {"gen": gen, "ids": ids})}
    query = sa.select(m.member_id, m.name).where(m.generation == gen)
    return {r.member_id: r.name or FORMER_MEMBER for r in conn.execute(query)}


def circle_known(conn: Connection, gen: int, circle_id: str) -> bool:
    c = t.circles.c
    return conn.execute(sa.select(c.circle_id).where(c.generation == gen, c.circle_id == circle_id)).first() is not None


_MEMBER_ROW = sa.select(t.members.c.member_id).where(t.members.c.generation == _GEN, t.members.c.member_id == _MEMBER)
# One indexed probe per side (an OR of the two is served by neither index).
_EXCHANGE_OF_SIDE = [sa.select(t.exchanges.c.exchange_id).where(t.exchanges.c.generation == _GEN, side == _MEMBER)
                     .limit(1) for side in (t.exchanges.c.giver, t.exchanges.c.receiver)]


def member_known(conn: Connection, gen: int, member_id: str) -> bool:
    params = {"gen": gen, "member": member_id}
    if conn.execute(_MEMBER_ROW, params).first():
        return True
    return any(conn.execute(probe, params).first() for probe in _EXCHANGE_OF_SIDE)


# --- member views ------------------------------------------------------------------------------


# A member's numbers, summed from their side of the exchanges (no counter table since migration 0009):
# acknowledged exchanges are settled, recorded ones pending, disputed and withdrawn ones count nowhere
# (SPEC). The eight counters, and the two (minutes, count) an exchange adds to by side and status:
MEMBER_COUNTERS = (
    "given_minutes", "given_count", "received_minutes", "received_count",
    "pending_given_minutes", "pending_given_count", "pending_received_minutes", "pending_received_count",
)  # fmt: skip
_COUNTED_AS = {(True, ACKNOWLEDGED): (0, 1), (False, ACKNOWLEDGED): (2, 3),
               (True, RECORDED): (4, 5), (False, RECORDED): (6, 7)}
# The statuses that count, written into the SQL: an IN of bound values is an expanding parameter, which
# SQLAlchemy renders into the statement again at every execution (a sixth of a summary's CPU).
_COUNTING: tuple[sa.ColumnElement[str], ...] = tuple(sa.literal_column(f"'{status}'")
                                                     for status in (RECORDED, ACKNOWLEDGED))


@functools.cache
def _sides_summed(who: str) -> sa.CompoundSelect:
    """Both sides of members' exchanges dated `start`..`end` that count, summed per side (`giving` 1 or
    0), member, kind and status, in one statement:
    each half is a range of the (generation, side, occurred_on, other, kind, status, minutes) index per
    member, which covers it (no table row is read), so a window costs its own exchanges only, whatever
    the history. `who`: "one" (`member`) or "all". Built once per variant."""
    x = t.exchanges.c
    halves = []
    for giving, side in ((1, x.giver), (0, x.receiver)):
        keys: list[Any] = [sa.literal_column(str(giving)).label("giving"), side.label("member"), x.kind, x.status]
        query = (sa.select(*keys, sa.func.sum(x.minutes).label("minutes"), sa.func.count().label("n"))
                 .where(x.generation == _GEN, x.occurred_on >= sa.bindparam("start"),
                        x.occurred_on <= sa.bindparam("end"), x.status.in_(_COUNTING))
                 .group_by(*keys[1:]))
        if who == "one":
            query = query.where(side == _MEMBER)
        halves.append(query)
    return sa.union_all(*halves)


def member_counters(conn: Connection, gen: int, start: date | None,
                    end: date | None) -> dict[str, dict[str, list[int]]]:
    """Per member and kind, the eight MEMBER_COUNTERS over exchanges dated `start`..`end` (either open
    when None), of everyone with an exchange that counts (the export's balances, the chaos check)."""
    params = {"gen": gen, "start": start or date.min, "end": end or date.max}
    return _counters_by_member(conn.execute(_sides_summed("all"), params))


def _counters_by_member(rows: Iterable[Any]) -> dict[str, dict[str, list[int]]]:
    """Rows of `_sides_summed` as the eight counters per member and kind."""
    found: dict[str, dict[str, list[int]]] = {}
    for giving, member, kind, status, minutes, n in rows:
        row = found.setdefault(member, {}).setdefault(kind, [0] * 8)
        m_idx, c_idx = _COUNTED_AS[(bool(giving), status)]
        row[m_idx] += int(minutes or 0)
        row[c_idx] += int(n)
    return found


def counter_totals(by_kind: Mapping[str, Sequence[int]]) -> dict[str, int]:
    """A member's counters over every kind, by name."""
    return {c: sum(v[i] for v in by_kind.values()) for i, c in enumerate(MEMBER_COUNTERS)}


# What a summary shows per kind (pending counts only in its totals).
_SHOWN_BY_KIND = ("given_minutes", "given_count", "received_minutes", "received_count", "pending_given_minutes",
                  "pending_received_minutes")
_WEEKLY_HOURS = (sa.select(t.members.c.weekly_hours)
                 .where(t.members.c.generation == _GEN, t.members.c.member_id == _MEMBER))
# Minutes given, settled and pending, by a member in a range of days: a range of the giver index.
_GIVEN_BETWEEN = (sa.select(sa.func.sum(t.exchanges.c.minutes))
                  .where(t.exchanges.c.generation == _GEN, t.exchanges.c.giver == _MEMBER,
                         t.exchanges.c.occurred_on >= sa.bindparam("start"),
                         t.exchanges.c.occurred_on <= sa.bindparam("end"), t.exchanges.c.status.in_(_COUNTING)))


def summary(conn: Connection, gen: int, member_id: str, window_days: int, today: date) -> dict[str, Any]:
    start, end = window_bounds(today, window_days)
    rows = conn.execute(_sides_summed("one"), {"gen": gen, "member": member_id, "start": start,
                                               "end": last_day_anywhere(end)})
    per_kind = _counters_by_member(rows).get(member_id, {})
    totals = counter_totals(per_kind)
    by_kind = {k: {c: v for c, v in zip(MEMBER_COUNTERS, per_kind.get(k, [0] * 8), strict=True)
                   if c in _SHOWN_BY_KIND} for k in EXCHANGE_KINDS}
    weekly_hours = conn.execute(_WEEKLY_HOURS, {"gen": gen, "member": member_id}).scalar()
    week_start = today - timedelta(days=CAPACITY_WINDOW_DAYS - 1)
    given_7 = int(conn.execute(_GIVEN_BETWEEN, {"gen": gen, "member": member_id, "start": week_start,
                                                "end": today}).scalar() or 0)
    used = round(given_7 / (weekly_hours * 60), 4) if weekly_hours else None
    return {
        "member_id": member_id,
        "window_days": window_days,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "given": {"minutes": totals["given_minutes"], "count": totals["given_count"],
                  "pending_minutes": totals["pending_given_minutes"], "pending_count": totals["pending_given_count"]},
        "received": {"minutes": totals["received_minutes"], "count": totals["received_count"],
                     "pending_minutes": totals["pending_received_minutes"],
                     "pending_count": totals["pending_received_count"]},
        "by_kind": by_kind,
        "reciprocity_index": round(measures.reciprocity_index(totals["given_minutes"], totals["received_minutes"]),
                                   4),
        "capacity": {"weekly_hours": weekly_hours, "given_last_7_days_minutes": given_7, "used_fraction": used},
    }  # fmt: skip


def _week_index(dialect: str, day: sa.ColumnElement, first: sa.BindParameter) -> sa.ColumnElement[int]:
    """Whole weeks from `first` (a Monday) to `day`, computed by the database, so a timeline is grouped
    there and only its buckets cross into Python."""
    if dialect == "postgresql":
        # date - date is a number of days; a plain "/" of two integers divides whole (SQLAlchemy's own
        # "/" would divide as NUMERIC, and the cast back would round up half the days).
        return sa.cast(day - first, sa.Integer).op("/")(7)
    return sa.cast((sa.func.julianday(day) - sa.func.julianday(first)) / 7, sa.Integer)


@functools.cache
def _weeks_summed(dialect: str) -> sa.CompoundSelect:
    """Both sides of a member's exchanges dated `start`..`end` that count, a row per side (`giving` 1 or
    0) and week from `first` (a Monday): the settled minutes of each of EXCHANGE_KINDS, in that order,
    and the pending minutes of every kind. Each half is a range of the member's covering side index, and
    the kinds and statuses are summed in the same pass (columns, not rows), so what crosses into Python
    is one row per side and week (it was one per kind and status as well: some 200 rows for a member
    busy in every week, each built and read in Python). Built once per dialect."""
    x = t.exchanges.c
    week = _week_index(dialect, x.occurred_on, sa.bindparam("first", type_=sa.Date)).label("week")
    settled: sa.ColumnElement[str] = sa.literal_column(f"'{ACKNOWLEDGED}'")
    recorded: sa.ColumnElement[str] = sa.literal_column(f"'{RECORDED}'")

    def minutes_if(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
        return sa.func.sum(sa.case((condition, x.minutes), else_=0))

    per_kind = [minutes_if(sa.and_(x.status == settled, x.kind == sa.literal_column(f"'{kind}'")))
                for kind in EXCHANGE_KINDS]
    pending = minutes_if(x.status == recorded)
    halves = [sa.select(sa.literal_column(str(giving)).label("giving"), week, *per_kind, pending)
              .where(x.generation == _GEN, side == _MEMBER, x.occurred_on >= sa.bindparam("start"),
                     x.occurred_on <= sa.bindparam("end"), x.status.in_(_COUNTING))
              .group_by(week)
              for giving, side in ((1, x.giver), (0, x.receiver))]
    return sa.union_all(*halves)


def timeline(conn: Connection, gen: int, member_id: str, weeks: int, today: date) -> dict[str, Any]:
    this_monday = today - timedelta(days=today.weekday())
    first = this_monday - timedelta(weeks=weeks - 1)
    buckets: dict[date, dict[str, Any]] = {
        first + timedelta(weeks=i): {"given": dict.fromkeys(EXCHANGE_KINDS, 0),
                                     "received": dict.fromkeys(EXCHANGE_KINDS, 0),
                                     "pending_given": 0, "pending_received": 0}
        for i in range(weeks)
    }
    # Summed per side and week in SQL: at most 2 x weeks rows come back, however many exchanges the
    # member has in those weeks.
    rows = conn.execute(_weeks_summed(conn.dialect.name),
                        {"gen": gen, "member": member_id, "first": first, "start": first, "end": today})
    for giving, week, *by_kind, pending in rows:
        b = buckets[first + timedelta(weeks=int(week))]
        side = b["given" if giving else "received"]
        for kind, minutes in zip(EXCHANGE_KINDS, by_kind, strict=True):
            side[kind] += int(minutes or 0)
        b["pending_given" if giving else "pending_received"] += int(pending or 0)
    return {"member_id": member_id,
            "weeks": [{"week_start": ws.isoformat(), **b} for ws, b in sorted(buckets.items())]}


def _sides(giving: bool) -> tuple[sa.Column, sa.Column]:
    x = t.exchanges.c
    return (x.giver, x.receiver) if giving else (x.receiver, x.giver)


@functools.cache
def _flows_of(giving: bool, paged: bool) -> sa.Select:
    """One party's side of a member's flows in a window (`start`, `end`), per other party, kind and status,
    summed by the database: a range of the (generation, side, occurred_on, other, kind, status, minutes)
    index, which covers the query (no table row is read). Recorded exchanges are pending, acknowledged
    ones settled; disputed and withdrawn ones count nowhere (SPEC). `paged`: only the other parties in
    `page`. Built once per variant, with bound parameters."""
    x = t.exchanges.c
    side, other_side = _sides(giving)
    query = (
        sa.select(other_side.label("other"), x.kind, x.status, sa.func.sum(x.minutes).label("minutes"),
                  sa.func.count().label("n"), sa.func.max(x.occurred_on).label("last"))
        .where(x.generation == _GEN, side == _MEMBER, x.occurred_on >= sa.bindparam("start"),
               x.occurred_on <= sa.bindparam("end"), x.status.in_(_COUNTING))
        .group_by(other_side, x.kind, x.status)
    )
    return query.where(other_side.in_(sa.bindparam("page", expanding=True))) if paged else query


@functools.cache
def _people_in_window() -> sa.Select:
    """The other parties of a member's exchanges in the window (`start`, `end`; exchanges that count),
    each once, with their name (None: not in the directory), in one statement: each side a range of its
    covering index, as `_flows_of` reads, the two deduplicated by a UNION, and only then named through
    the directory's key (a busy member's 90 days hold a few hundred exchanges with some 130 people: each
    of them named once, not each exchange, and one row each crosses into Python). Built once."""
    x, m = t.exchanges.c, t.members.c
    # No DISTINCT in a half: SQLite would answer that from the other party's index in its order, a scan
    # of everyone's exchanges; the UNION deduplicates what the two ranges read.
    people = sa.union(*(sa.select(other_side.label("other"))
                        .where(x.generation == _GEN, side == _MEMBER, x.occurred_on >= sa.bindparam("start"),
                               x.occurred_on <= sa.bindparam("end"), x.status.in_(_COUNTING))
                        for side, other_side in (_sides(True), _sides(False)))).subquery("people")
    return (sa.select(people.c.other, m.name)
            .select_from(people.outerjoin(t.members, sa.and_(m.generation == _GEN, m.member_id == people.c.other))))


def relationships(conn: Connection, gen: int, member_id: str, window_days: int, today: date,
                  limit: int | None = None, cursor: str | None = None) -> dict[str, Any]:
    """Per other party: minutes and counts given and received in the window, settled and pending, by
    kind, and the last day they exchanged, by name. Read from the exchanges themselves through covering
    indexes, summed in SQL: the rows read are the window's exchanges of this member only, and what
    crosses into Python is one row per other party, kind and status.

    With `limit`, one page of people by name (and `next_cursor`, None on the last page): who is in the
    window is read first (the distinct other parties, from the same indexes) and only the page's people
    are summed and shaped, so a page costs about the same however many people a long history holds."""
    start, end = window_bounds(today, window_days)
    params: dict[str, Any] = {"gen": gen, "member": member_id, "start": start, "end": last_day_anywhere(end)}
    page: list[str] | None = None
    next_cursor = None
    if limit is not None:
        after = _decode_people_cursor(cursor) if cursor else None
        names: dict[str, str] = {}  # as member_names names them (an id not in the directory: no entry)
        ordered = []
        for other, name in conn.execute(_people_in_window(), params):
            if other == member_id:
                continue
            if name is not None:
                name = names[other] = name or FORMER_MEMBER
            ordered.append(((name if name is not None else other).lower(), other))
        ordered.sort()
        if after is not None:
            ordered = [key for key in ordered if key > after]
        page = [o for _, o in ordered[:limit]]
        if len(ordered) > limit:
            next_cursor = _encode_people_cursor(*ordered[limit - 1])
        if not page:
            return {"member_id": member_id, "relationships": [], "next_cursor": None}
    # Per other party: eight sums (given, received x settled, pending x minutes, count), the minutes per
    # (kind, column) and the last day; shaped into the answer once per person, not once per row.
    sums: dict[str, tuple[list[int], dict[tuple[str, int], int], list[Any]]] = {}
    # One query per side, each served by its index; an OR of the two is served by neither.
    for base, giving in ((0, True), (2, False)):
        query = _flows_of(giving, page is not None)
        for other, kind, status, minutes, n, last in conn.execute(query, {**params, "page": page}):
            if other == member_id:
                continue
            # A row per other party, kind and status: as little as can be done with each (the last day
            # is compared as the database gives it, a day or ISO text alike, and read once a person).
            found = sums.get(other)
            if found is None:
                found = sums[other] = ([0] * 8, defaultdict(int), [last])
            elif last > found[2][0]:
                found[2][0] = last
            column = base if status == ACKNOWLEDGED else base + 4
            minutes = int(minutes or 0)
            counters = found[0]
            counters[column] += minutes
            counters[column + 1] += int(n)
            found[1][(kind, column)] += minutes
    if page is None:
        names = member_names(conn, gen, sums)
    out: list[dict[str, Any]] = []
    for other, (v, by_kind, last_day) in sums.items():
        def kinds(settled: bool, by_kind: dict[tuple[str, int], int] = by_kind) -> dict[str, dict[str, int]]:
            g, r = (0, 2) if settled else (4, 6)
            return {k: {"given_minutes": by_kind.get((k, g), 0), "received_minutes": by_kind.get((k, r), 0)}
                    for k in EXCHANGE_KINDS}

        out.append({
            "other": other, "other_name": names.get(other, other),
            "given_minutes": v[0], "given_count": v[1], "received_minutes": v[2], "received_count": v[3],
            "by_kind": kinds(True), "last_exchange_on": _iso(_day(last_day[0])),
            # Recorded, not yet acknowledged: shown as such beside the settled flow (SPEC).
            "pending_given_minutes": v[4], "pending_given_count": v[5], "pending_received_minutes": v[6],
            "pending_received_count": v[7], "pending_by_kind": kinds(False),
        })  # fmt: skip
    # A list of people, never a ranking by how much (SPEC, Measures: privacy).
    out.sort(key=lambda i: (i["other_name"].lower(), i["other"]))
    return {"member_id": member_id, "relationships": out, "next_cursor": next_cursor}


def _encode_people_cursor(name: str, other: str) -> str:
    raw = json.dumps(["people", name, other])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_people_cursor(cursor: str) -> tuple[str, str]:
    try:
        tag, name, other = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if tag != "people" or not isinstance(name, str) or not isinstance(other, str):
            raise ValueError("not a people cursor")
        return name, other
    except (ValueError, TypeError) as err:
        raise BadCursor("cursor is not one this service handed out") from err


# --- exchanges ---------------------------------------------------------------------------------


def _exchange_dict(r: Any, names: dict[str, str]) -> dict[str, Any]:
    return {
        "exchange_id": r.exchange_id, "giver": r.giver, "giver_name": names.get(r.giver, r.giver),
        "receiver": r.receiver, "receiver_name": names.get(r.receiver, r.receiver), "kind": r.kind,
        "minutes": int(r.minutes), "note": r.note or "", "occurred_on": _iso(_day(r.occurred_on)),
        "recorded_by": r.recorded_by, "recorded_at": _iso(r.recorded_at), "status": r.status,
        "thanks": r.thanks, "dispute_reason": r.dispute_reason, "shared_by_recorder": bool(r.shared_by_recorder),
        "shared_by_acknowledger": bool(r.shared_by_acknowledger),
        # What the recorder's latest correction replaced (the other party sees what changed), or None.
        "correction": json.loads(r.correction) if getattr(r, "correction", None) else None,
    }  # fmt: skip


def _exchange_list(conn: Connection, gen: int, rows: Sequence[Any]) -> list[dict[str, Any]]:
    names = member_names(conn, gen, [r.giver for r in rows] + [r.receiver for r in rows])
    return [_exchange_dict(r, names) for r in rows]


class BadCursor(ValueError):
    """A cursor this service did not hand out (or from another version of it)."""


@dataclass(frozen=True)
class HistoryFilter:
    """Which of a member's exchanges a page lists; every field optional."""

    status: str | None = None
    kind: str | None = None
    other: str | None = None  # the other party
    since: date | None = None  # occurred_on from (inclusive)
    until: date | None = None  # occurred_on to (inclusive)
    recorded_by: str | None = None  # RECORDED_BY_ME or RECORDED_BY_OTHER: who recorded it


# Who recorded an exchange, as a history filter names it: the member whose history it is, or the other
# party (recorded, that is what waits for her answer).
RECORDED_BY_ME, RECORDED_BY_OTHER = "me", "other"
RECORDED_BY = (RECORDED_BY_ME, RECORDED_BY_OTHER)


def encode_cursor(occurred_on: date, recorded_at: datetime, exchange_id: str) -> str:
    """Opaque to clients: where the next page starts (the last row of this one, excluded)."""
    raw = json.dumps([occurred_on.isoformat(), _naive_utc(recorded_at).isoformat(), exchange_id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[date, datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        day, at, xid = json.loads(raw)
        return date.fromisoformat(day), datetime.fromisoformat(at), str(xid)
    except (ValueError, TypeError) as err:
        raise BadCursor("cursor is not one this service handed out") from err


def _naive_utc(value: Any) -> datetime:
    """recorded_at as SQLite returns it (naive UTC) and PostgreSQL (aware): one comparable form."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _history_side(gen: int, side: sa.Column, other_side: sa.Column, member_id: str, f: HistoryFilter,
                  after: tuple[date, datetime, str] | None, limit: int) -> sa.Select:
    """The statement a page runs for one side, its values bound into it (to read its plan)."""
    shape, params = _history_shape(gen, member_id, f, after, limit)
    return _history_statement(side.name == "giver", *shape).params(params)


def _history_shape(gen: int, member_id: str, f: HistoryFilter, after: tuple[date, datetime, str] | None,
                   limit: int) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Which statement a page of a member's history runs (the filters given), and its parameters."""
    params: dict[str, Any] = {"gen": gen, "member": member_id, "status": f.status, "kind": f.kind, "other": f.other,
                              "since": f.since, "until": f.until, "limit": limit}
    if after is not None:
        day, at, xid = after
        # PostgreSQL compares instants; SQLite's text drops the zone (UTC)
        params.update(day=day, at=at.replace(tzinfo=UTC), xid=xid)
    shape = (bool(f.status), bool(f.kind), bool(f.other), bool(f.since), bool(f.until), after is not None,
             f.recorded_by)
    return shape, params


# What a listed exchange shows (_exchange_dict): not the event ids, circles and times of the projection's
# bookkeeping, which a page would read and convert for nothing.
_LISTED = tuple(t.exchanges.c[name] for name in (
    "exchange_id", "giver", "receiver", "kind", "minutes", "note", "occurred_on", "recorded_by", "recorded_at",
    "status", "thanks", "dispute_reason", "shared_by_recorder", "shared_by_acknowledger", "correction"))


@functools.cache
def _history_statement(giving: bool, status: bool, kind: bool, other: bool, since: bool, until: bool,
                       after: bool, recorded_by: str | None = None) -> sa.Select:
    """One party's side of a member's history in its order (newest day first, then newest recorded, then
    id: a total order, so a cursor names one place in it): a range scan of the (generation, side,
    occurred_on) index read backwards, filtered, stopped after `limit` rows. Built once per side and set
    of filters."""
    x = t.exchanges.c
    side, other_side = (x.giver, x.receiver) if giving else (x.receiver, x.giver)
    query = sa.select(*_LISTED).where(x.generation == _GEN, side == _MEMBER)
    if status:
        query = query.where(x.status == sa.bindparam("status"))
    if kind:
        query = query.where(x.kind == sa.bindparam("kind"))
    if other:
        query = query.where(other_side == sa.bindparam("other"))
    if since:
        query = query.where(x.occurred_on >= sa.bindparam("since"))
    if until:
        query = query.where(x.occurred_on <= sa.bindparam("until"))
    if recorded_by is not None:
        # Not in the side index: read from the row, which the page reads anyway.
        query = query.where(x.recorded_by == _MEMBER if recorded_by == RECORDED_BY_ME else x.recorded_by != _MEMBER)
    if after:
        day: sa.BindParameter[date] = sa.bindparam("day")
        at: sa.BindParameter[datetime] = sa.bindparam("at")
        xid: sa.BindParameter[str] = sa.bindparam("xid")
        query = query.where(
            x.occurred_on <= day,  # the index range; the rest picks up within the day
            sa.or_(x.occurred_on < day,
                   sa.and_(x.occurred_on == day,
                           sa.or_(x.recorded_at < at, sa.and_(x.recorded_at == at, x.exchange_id < xid)))),
        )
    return (query.order_by(x.occurred_on.desc(), x.recorded_at.desc(), x.exchange_id.desc())
            .limit(sa.bindparam("limit", type_=sa.Integer)))


@functools.cache
def _page_statement(*shape: Any) -> sa.CompoundSelect:
    """Both sides of a page (each `_history_statement`, at most `limit` rows) merged in the database, in
    the same order, to the `limit` newest: one statement, and only the page's rows come back (two sides'
    worth were read into Python, converted and sorted there, and half of them dropped)."""
    both = sa.union_all(*(_history_statement(giving, *shape).subquery().select() for giving in (True, False)))
    by = both.selected_columns
    return (both.order_by(by.occurred_on.desc(), by.recorded_at.desc(), by.exchange_id.desc())
            .limit(sa.bindparam("limit", type_=sa.Integer)))


def exchange_page(conn: Connection, gen: int, member_id: str, f: HistoryFilter, limit: int,
                  cursor: str | None = None) -> dict[str, Any]:
    """A page of the member's exchanges, newest first, and the cursor of the next page (None: last page).

    Cost is one index range scan per side (given, received) of `limit + 1` rows at most after the
    filters, whatever the size of everyone else's history: an `OR` of giver and receiver ordered by
    date is served by neither index, which made every page read the whole table."""
    after = decode_cursor(cursor) if cursor else None
    shape, params = _history_shape(gen, member_id, f, after, limit + 1)
    rows = conn.execute(_page_statement(*shape), params).all()
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more else None
    next_cursor = encode_cursor(_day(last.occurred_on), last.recorded_at, last.exchange_id) if last else None  # type: ignore[arg-type]
    return {"exchanges": _exchange_list(conn, gen, rows), "next_cursor": next_cursor}


# How many of a member's recorded exchanges, per side, the dashboard's counts read at most: a count of
# everything waiting would read a row per exchange that ever waited (who recorded it is not in the side
# index), which grows for a member who never acknowledges. Past this, the counts say "at least".
WAITING_COUNT_READS = 25


@functools.cache
def _waiting_by_recorder() -> sa.CompoundSelect:
    """Per side (`giving` 1 or 0), who recorded each of at most `reads` recorded exchanges of the member:
    a range of the side index narrowed by status, and the row of each for its recorder."""
    x = t.exchanges.c
    return sa.union_all(*(
        sa.select(sa.literal_column(str(giving)).label("giving"), x.recorded_by)
        .where(x.generation == _GEN, side == _MEMBER, x.status == RECORDED)
        .limit(sa.bindparam("reads", type_=sa.Integer)).subquery().select()
        for giving, side in ((1, x.giver), (0, x.receiver))))


def waiting_count(conn: Connection, gen: int, member_id: str, reads: int = WAITING_COUNT_READS) -> dict[str, Any]:
    """How many recorded exchanges wait for the member's answer (`for_me`: the other party recorded them)
    and for the other party's (`for_others`: she recorded them). `complete` is False when she has more
    than `reads` recorded exchanges on a side: the counts are then of those read, lower bounds."""
    rows = conn.execute(_waiting_by_recorder(), {"gen": gen, "member": member_id, "reads": reads + 1}).all()
    # One more than `reads` a side says whether there are more; only `reads` of them are counted.
    sides = [[r.recorded_by for r in rows if int(r.giving) == giving] for giving in (0, 1)]
    recorders = [who for side in sides for who in side[:reads]]
    mine = recorders.count(member_id)
    return {"for_me": len(recorders) - mine, "for_others": mine,
            "complete": all(len(side) <= reads for side in sides)}


def exchanges_of(conn: Connection, gen: int, member_id: str, status: str | None, limit: int) -> list[dict[str, Any]]:
    """The newest `limit` exchanges of the member (one status only, if given)."""
    return exchange_page(conn, gen, member_id, HistoryFilter(status=status), limit)["exchanges"]


def exchange(conn: Connection, gen: int, exchange_id: str) -> dict[str, Any] | None:
    x = t.exchanges.c
    row = conn.execute(sa.select(t.exchanges).where(x.generation == gen, x.exchange_id == exchange_id)).first()
    return _exchange_list(conn, gen, [row])[0] if row else None


def appreciations(conn: Connection, gen: int, limit: int, cursor: str | None = None) -> dict[str, Any]:
    """The appreciation wall, a page of it: acknowledged exchanges both parties share, the newest thanks
    first, down to the oldest by cursor. The private note and any dispute reason are never part of it,
    whoever asks."""
    x = t.exchanges.c
    # The partial index's condition as its text: a database uses a partial index only for a query whose
    # WHERE implies it, which it cannot see through bound parameters. Newest thanks first (updated_at is
    # when it was acknowledged; consent changes leave it alone), then id: a total order for the cursor.
    query = sa.select(t.exchanges).where(x.generation == gen, sa.text(t.ON_THE_WALL))
    if cursor:
        at, xid = _decode_wall_cursor(cursor)
        query = query.where(sa.or_(x.updated_at < at, sa.and_(x.updated_at == at, x.exchange_id < xid)))
    rows = conn.execute(query.order_by(x.updated_at.desc(), x.exchange_id.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    listed = [{**e, "note": "", "dispute_reason": None, "acknowledged_at": _iso(r.updated_at)}
              for e, r in zip(_exchange_list(conn, gen, rows), rows, strict=True)]
    next_cursor = _encode_wall_cursor(rows[-1].updated_at, rows[-1].exchange_id) if more else None
    return {"appreciations": listed, "next_cursor": next_cursor}


def _encode_wall_cursor(at: Any, exchange_id: str) -> str:
    raw = json.dumps(["wall", _naive_utc(at).isoformat(), exchange_id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_wall_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        tag, at, xid = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if tag != "wall":
            raise ValueError("not a wall cursor")
        # PostgreSQL compares instants; SQLite's text drops the zone (UTC).
        return datetime.fromisoformat(at).replace(tzinfo=UTC), str(xid)
    except (ValueError, TypeError) as err:
        raise BadCursor("cursor is not one this service handed out") from err


def exchanges_between(conn: Connection, gen: int, start: date | None, end: date | None) -> Iterable[dict[str, Any]]:
    """Every exchange (for export), oldest first, streamed."""
    x = t.exchanges.c
    query = sa.select(t.exchanges).where(x.generation == gen)
    if start:
        query = query.where(x.occurred_on >= start)
    if end:
        query = query.where(x.occurred_on <= end)
    names = member_names(conn, gen)
    for r in conn.execute(query.order_by(x.occurred_on, x.recorded_at, x.exchange_id)):
        yield _exchange_dict(r, names)


# --- directory ---------------------------------------------------------------------------------


def _circles_by_member(conn: Connection, gen: int, member_ids: list[str] | None = None) -> dict[str, list[str]]:
    """Circles of the given members (of everyone with None), each list sorted."""
    ms = t.memberships.c
    found: dict[str, list[str]] = defaultdict(list)
    query = sa.select(ms.member_id, ms.circle_id).where(ms.generation == gen).order_by(ms.circle_id)
    if member_ids is None:
        chunks: list[Any] = [query]
    else:
        ordered = sorted(set(member_ids))
        chunks = [query.where(ms.member_id.in_(ordered[i:i + 500])) for i in range(0, len(ordered), 500)]
    for chunk in chunks:
        for r in conn.execute(chunk):
            found[r.member_id].append(r.circle_id)
    return found


def _member_dict(r: Any, circles: list[str]) -> dict[str, Any]:
    return {"id": r.member_id, "name": r.name or FORMER_MEMBER, "email": r.email or None, "circles": circles,
            "role": r.role, "former": not r.name,
            "weekly_hours": r.weekly_hours, "status": r.status, "paused_until": _iso(_day(r.paused_until))}


def directory_members(conn: Connection, gen: int, q: str = "", circle: str = "") -> list[dict[str, Any]]:
    """Members, by name; with `circle`, that circle's only, read through the memberships' key rather
    than by listing everyone (a circle page must not cost the size of the organisation)."""
    m, ms = t.members.c, t.memberships.c
    query = sa.select(t.members).where(m.generation == gen)
    if circle:
        query = query.where(m.member_id.in_(
            sa.select(ms.member_id).where(ms.generation == gen, ms.circle_id == circle).scalar_subquery()))
    needle = q.strip().lower()
    rows = [r for r in conn.execute(query.order_by(m.name, m.member_id))
            if not needle or needle in r.member_id.lower() or needle in r.name.lower()]
    circles = _circles_by_member(conn, gen, None if not (circle or needle) else [r.member_id for r in rows])
    return [_member_dict(r, circles.get(r.member_id, [])) for r in rows]


# A member with their circles, one row per circle (one row with no circle for a member of none).
_MEMBER_WITH_CIRCLES = (
    sa.select(t.members, t.memberships.c.circle_id.label("in_circle"))
    .select_from(t.members.outerjoin(t.memberships, sa.and_(t.memberships.c.generation == t.members.c.generation,
                                                            t.memberships.c.member_id == t.members.c.member_id)))
    .where(t.members.c.generation == _GEN, t.members.c.member_id == _MEMBER)
    .order_by(t.memberships.c.circle_id))
# Every signed-in page asks for its member: let the database pick the circles whose leads (JSON text)
# mention the id, and parse only those (a LIKE's "_" matches more, never less; json decides).
_CIRCLES_LEADS_MENTIONING = (sa.select(t.circles.c.circle_id, t.circles.c.leads)
                             .where(t.circles.c.generation == _GEN,
                                    t.circles.c.leads.like(sa.bindparam("pattern"), escape="/")))


def _contains_pattern(text: str) -> str:
    """A LIKE pattern for "contains `text`" with `/` as the escape (what SQLAlchemy's autoescape does)."""
    return "%" + text.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


def directory_member(conn: Connection, gen: int, member_id: str) -> dict[str, Any] | None:
    params = {"gen": gen, "member": member_id}
    rows = conn.execute(_MEMBER_WITH_CIRCLES, params).all()
    if not rows:
        return None
    mine = [r.in_circle for r in rows if r.in_circle is not None]
    mentioning = {**params, "pattern": _contains_pattern(f'"{member_id}"')}
    leads = sorted(x.circle_id for x in conn.execute(_CIRCLES_LEADS_MENTIONING, mentioning)
                   if member_id in json.loads(x.leads or "[]"))
    return {**_member_dict(rows[0], mine), "leads_circles": leads}


def directory_circles(conn: Connection, gen: int) -> list[dict[str, Any]]:
    c, ms = t.circles.c, t.memberships.c
    counts: dict[str, int] = dict(conn.execute(
        sa.select(ms.circle_id, sa.func.count()).where(ms.generation == gen).group_by(ms.circle_id)).all())
    return [
        {"id": r.circle_id, "name": r.name, "parent": r.parent, "leads": json.loads(r.leads or "[]"),
         "member_count": int(counts.get(r.circle_id, 0))}
        for r in conn.execute(sa.select(t.circles).where(c.generation == gen).order_by(c.name, c.circle_id))
    ]


def circle_leads(conn: Connection, gen: int) -> dict[str, list[str]]:
    c = t.circles.c
    return {r.circle_id: json.loads(r.leads or "[]")
            for r in conn.execute(sa.select(c.circle_id, c.leads).where(c.generation == gen))}


# --- circle health -----------------------------------------------------------------------------


# What a circle's health may carry besides its measures, for the web to draw: nothing (the measures are
# for everyone), who exchanged with whom (for its members: who is connected with whom, no amounts nor
# directions) as pairs (`ties`) or as each person with the others (`linked`), or every directed flow with
# its minutes (for its leads). The web asks for what its viewer may see, so amounts leave balance only
# for a page that shows them. `linked` is what the web draws from: a busy circle has a tie for most of its
# pairs (a thousand and more), and one list per person is a tenth of the work of a list per pair, both
# here and in the web, which drew its grid from the pairs regrouped by person.
PICTURES = ("none", "ties", "linked", "flows")


@functools.cache
def _circle_statements() -> dict[str, sa.Select]:
    """The statements of a circle's health, built once. Each reads, for each member of the circle, a range
    of one covering index of the exchanges over the window (`start`, `end`), settled exchanges only, and
    groups in the database by member: what comes back is a row per member, whatever the history."""
    x = t.exchanges.c
    members: sa.BindParameter[list[str]] = sa.bindparam("members", expanding=True)
    settled = (x.generation == _GEN, x.occurred_on >= sa.bindparam("start"), x.occurred_on <= sa.bindparam("end"),
               x.status == ACKNOWLEDGED)
    return {
        # What each member gave, and to whom (ids are slugs: a space cannot be part of one).
        "giving": sa.select(x.giver.label("member_id"), sa.func.sum(x.minutes).label("minutes"),
                            sa.func.aggregate_strings(x.receiver, " ").label("receivers"))
        .where(*settled, x.giver.in_(members)).group_by(x.giver),
        "receiving": sa.select(x.receiver.label("member_id")).where(*settled, x.receiver.in_(members))
        .group_by(x.receiver),
        "flows": sa.select(x.giver, x.receiver, sa.func.sum(x.minutes).label("minutes"))
        .where(*settled, x.giver.in_(members), x.receiver.in_(members), x.giver != x.receiver, x.minutes > 0)
        .group_by(x.giver, x.receiver).order_by(x.giver, x.receiver),
    }


def circle_health(conn: Connection, gen: int, circle_id: str, window_days: int, today: date,
                  picture: str = "none") -> dict[str, Any] | None:
    """The circle's measures over the window, with the `picture` asked for (PICTURES) unless the circle is
    private: `ties` as [a, b] id pairs (a < b), `linked` as {person: [the others they exchanged with,
    either way]} (each pair under both of its people), `flows` as {giver, receiver, minutes}, each by ids."""
    if picture not in PICTURES:
        raise ValueError(f"picture must be one of {PICTURES}, not {picture!r}")
    c, ms, m, cd = t.circles.c, t.memberships.c, t.members.c, t.circle_day.c
    circle = conn.execute(sa.select(t.circles).where(c.generation == gen, c.circle_id == circle_id)).first()
    if circle is None:
        return None
    start, end = window_bounds(today, window_days)
    people = conn.execute(
        sa.select(m.member_id, m.status, m.paused_until)
        .join(t.memberships, sa.and_(ms.generation == m.generation, ms.member_id == m.member_id))
        .where(m.generation == gen, ms.circle_id == circle_id)
    ).all()
    members = sorted(r.member_id for r in people)
    active = [r.member_id for r in people if not is_paused(r.status, _day(r.paused_until), today)]
    private = measures.is_private(len(members))
    given: dict[str, int] = {}
    exchanged: set[str] = set()
    tied: dict[str, set[str]] = {}
    tie_count = mutual = 0
    shown: dict[str, Any] = {}
    if members and not private:
        statements = _circle_statements()
        params = {"gen": gen, "members": members, "start": start, "end": last_day_anywhere(end)}
        inside = set(members)
        gave_to: dict[str, set[str]] = {}
        for r in conn.execute(statements["giving"], params):
            given[r.member_id] = int(r.minutes or 0)
            others = set(r.receivers.split(" ")) & inside
            others.discard(r.member_id)
            gave_to[r.member_id] = others
        tied, mutual = measures.ties_among(gave_to)
        tie_count = sum(len(others) for others in tied.values()) // 2
        exchanged = set(given) | set(tied)
        # Who else exchanged: only received, and from outside the circle. Asked of those not known yet (at a
        # busy circle, nobody or a few).
        if unknown := [p for p in members if p not in exchanged]:
            exchanged |= set(conn.execute(statements["receiving"], {**params, "members": unknown}).scalars())
        if picture == "flows":
            shown["flows"] = [{"giver": r.giver, "receiver": r.receiver, "minutes": int(r.minutes)}
                              for r in conn.execute(statements["flows"], params)]
        elif picture == "ties":
            shown["ties"] = [[a, b] for a in sorted(tied) for b in sorted(tied[a]) if a < b]
        elif picture == "linked":
            shown["linked"] = {person: sorted(others) for person, others in sorted(tied.items()) if others}
    per_kind = {
        r.kind: r for r in conn.execute(
            sa.select(cd.kind, sa.func.sum(cd.inside_count).label("ic"), sa.func.sum(cd.crossing_count).label("xc"),
                      sa.func.sum(cd.inside_minutes + cd.crossing_minutes).label("minutes"))
            .where(cd.generation == gen, cd.circle_id == circle_id, cd.day >= start, cd.day <= last_day_anywhere(end))
            .group_by(cd.kind)
        )
    } if not private else {}  # fmt: skip

    def kind_count(kind: str) -> int:
        r = per_kind.get(kind)
        return int((r.ic or 0) + (r.xc or 0)) if r else 0

    health = measures.circle_health(
        members=members,
        active_members=active,
        given_by_member=given,
        exchanged_members=exchanged,
        tie_count=tie_count,
        mutual_tie_count=mutual,
        inside_count=sum(int(r.ic or 0) for r in per_kind.values()),
        crossing_count=sum(int(r.xc or 0) for r in per_kind.values()),
        mentoring_minutes=int(per_kind["mentoring"].minutes or 0) if "mentoring" in per_kind else 0,
        mentoring_count=kind_count("mentoring"),
        feedback_count=kind_count("feedback"),
        window_days=window_days,
    )
    return {"circle_id": circle_id, "name": circle.name, "window_days": window_days, **health, **shown}


# --- signals -----------------------------------------------------------------------------------


@functools.cache
def _signals_statement(by_member: bool, active: bool | None) -> sa.Select:
    """Signals newest first, of one member (`member`) or all, in force or not or both: built once per
    variant (every dashboard asks for its member's)."""
    s = t.signals.c
    query = sa.select(t.signals)
    if by_member:
        query = query.where(s.member_id == sa.bindparam("member"))
    if active is not None:
        query = query.where(s.active.is_(active))  # IS takes a literal, not a parameter (PostgreSQL)
    return query.order_by(s.raised_at.desc(), s.event_id)


def signals(conn: Connection, *, circle: str | None = None, member: str | None = None,
            active: bool | None = None, limit: int = 500) -> list[dict[str, Any]]:
    out = []
    for r in conn.execute(_signals_statement(bool(member), active), {"member": member}):
        circles = json.loads(r.circles or "[]")
        if circle and circle not in circles:
            continue
        out.append({
            "event_id": r.event_id, "type": r.type, "member_id": r.member_id, "circles": circles,
            "raised_at": _iso(r.raised_at), "window_start": _iso(_day(r.window_start)),
            "window_end": _iso(_day(r.window_end)), "details": json.loads(r.details or "{}"),
            "active": bool(r.active), "cleared_at": _iso(r.cleared_at),
        })  # fmt: skip
        if len(out) >= limit:
            break
    return out


# --- projection status -------------------------------------------------------------------------


def stored_offsets(conn: Connection, gen: int) -> dict[tuple[str, int], tuple[int, Any]]:
    return {key: (p.next_offset, p.last_event_at) for key, p in t.positions.read(conn, generation=gen).items()}


def building_progress(generation: Mapping[str, Any] | None, stored: dict[tuple[str, int], tuple[int, Any]],
                      ends: dict[tuple[str, int], int] | None) -> dict[str, Any] | None:
    """How far a replay's `building` generation got: offsets applied over today's end offsets (the replay
    aims at the ends it took when it began, so this is a slight underestimate while events arrive).
    `end` and `progress` are None while Kafka does not answer."""
    if generation is None:
        return None
    applied = sum(next_offset for next_offset, _ in stored.values())
    end = sum(ends.values()) if ends is not None else None
    progress = None if end is None else (1.0 if end == 0 else min(applied / end, 1.0))
    return {"generation": int(generation["id"]), "started_at": _iso(generation.get("created_at")),
            "applied": applied, "end": end, "progress": progress}


def partition_status(stored: dict[tuple[str, int], tuple[int, Any]],
                     ends: dict[tuple[str, int], int] | None) -> list[dict[str, Any]]:
    keys = sorted(set(stored) | set(ends or {}))
    out = []
    for key in keys:
        applied, last_at = stored.get(key, (0, None))
        end = (ends or {}).get(key)
        out.append({"topic": key[0], "partition": key[1], "applied_offset": applied, "end_offset": end,
                    "lag": max(end - applied, 0) if end is not None else None, "last_event_at": _iso(last_at)})
    return out
