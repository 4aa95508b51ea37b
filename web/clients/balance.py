"""The web's client of the balance read API: the shapes of its answers, the interface pages depend on
(`Balance`; the fakes in tests implement it too) and its HTTP implementation."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal, Protocol

from pydantic import Field
from reciprocity.common.service_client import ServiceClient, Shape, Unavailable, segment
from reciprocity.contracts.vocabulary import ACTIVE, PAUSED, RECORDED


class Totals(Shape):
    minutes: int = 0
    count: int = 0
    pending_minutes: int = 0
    pending_count: int = 0


class KindTotals(Shape):
    given_minutes: int = 0
    given_count: int = 0
    received_minutes: int = 0
    received_count: int = 0
    pending_given_minutes: int = 0
    pending_received_minutes: int = 0


class Capacity(Shape):
    weekly_hours: float | None = None
    given_last_7_days_minutes: int = 0
    used_fraction: float | None = None


class Summary(Shape):
    member_id: str
    window_days: int
    from_: date | None = Field(default=None, alias="from")
    to: date | None = None
    given: Totals = Totals()
    received: Totals = Totals()
    by_kind: dict[str, KindTotals] = {}
    reciprocity_index: float = 1.0
    capacity: Capacity = Capacity()

    def kind(self, kind: str) -> KindTotals:
        return self.by_kind.get(kind, KindTotals())


class Week(Shape):
    week_start: date
    given: dict[str, int] = {}
    received: dict[str, int] = {}
    pending_given: int = 0
    pending_received: int = 0


class Timeline(Shape):
    member_id: str
    weeks: list[Week] = []
    pending_given: int = 0
    pending_received: int = 0


class Relationship(Shape):
    other: str
    other_name: str = ""
    given_minutes: int = 0
    received_minutes: int = 0
    given_count: int = 0
    received_count: int = 0
    by_kind: dict[str, dict[str, int]] = {}
    last_exchange_on: date | None = None
    # Recorded and not yet acknowledged, as balance counts them per pair.
    pending_given_minutes: int = 0
    pending_received_minutes: int = 0
    pending_given_count: int = 0
    pending_received_count: int = 0
    pending_by_kind: dict[str, dict[str, int]] = {}

    @property
    def name(self) -> str:
        return self.other_name or self.other

    @property
    def settled_count(self) -> int:
        return self.given_count + self.received_count


class Exchange(Shape):
    exchange_id: str
    giver: str
    giver_name: str = ""
    receiver: str
    receiver_name: str = ""
    kind: str
    minutes: int
    note: str = ""
    occurred_on: date
    recorded_by: str
    recorded_at: datetime | None = None
    status: str = RECORDED
    thanks: str | None = None
    dispute_reason: str | None = None
    shared_by_recorder: bool = False
    shared_by_acknowledger: bool = False
    acknowledged_at: datetime | None = None  # on the wall only: when it was thanked
    correction: dict[str, Any] | None = None  # what the recorder's latest correction replaced

    def name_of(self, member_id: str) -> str:
        if member_id == self.giver:
            return self.giver_name or self.giver
        if member_id == self.receiver:
            return self.receiver_name or self.receiver
        return member_id

    @property
    def counterpart(self) -> str:
        """The party who did not record it: the one who may acknowledge or dispute."""
        return self.receiver if self.recorded_by == self.giver else self.giver

    def involves(self, member_id: str) -> bool:
        return member_id in (self.giver, self.receiver)

    def other_party(self, member_id: str) -> str:
        return self.receiver if member_id == self.giver else self.giver


class WallPage(Shape):
    """One page of the appreciation wall, newest first; `next_cursor` fetches older ones (None: the oldest)."""

    appreciations: list[Exchange] = []
    next_cursor: str | None = None


class RelationshipPage(Shape):
    """One page of a member's people, by name; `next_cursor` fetches the next (None: the last)."""

    relationships: list[Relationship] = []
    next_cursor: str | None = None


class ExchangePage(Shape):
    """One page of a member's history, newest first; `next_cursor` fetches the next (None: the last)."""

    exchanges: list[Exchange] = []
    next_cursor: str | None = None


class Member(Shape):
    id: str
    name: str = ""
    email: str = ""
    circles: list[str] = []
    role: str = "member"
    weekly_hours: float | None = None
    status: str = ACTIVE
    paused_until: date | None = None
    leads_circles: list[str] = []
    former: bool = False  # forgotten: no name, no email, no sign-in; exchanges still count

    @property
    def display_name(self) -> str:
        return self.name or self.id

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"

    @property
    def is_paused(self) -> bool:
        return self.status == PAUSED


class Circle(Shape):
    id: str
    name: str = ""
    parent: str | None = None
    leads: list[str] = []
    member_count: int = 0


class Flow(Shape):
    giver: str
    receiver: str
    minutes: int


# What a circle's health carries besides its measures: nothing, who is connected with whom (no amounts:
# as pairs, or each person with the others), or every flow with its minutes. Ask for the least the viewer
# may see.
Picture = Literal["none", "ties", "linked", "flows"]


class CircleHealth(Shape):
    circle_id: str
    name: str = ""
    window_days: int = 28
    member_count: int = 0
    private: bool = False
    participation_rate: float | None = None
    mutual_ties: float | None = None
    gini: float | None = None
    cross_circle_breadth: float | None = None
    mentoring_minutes: int | None = None
    mentoring_count: int | None = None
    feedback_cycles: float | None = None
    # The picture, when asked for (Balance.circle_health's `picture`): the pairs who exchanged, or the flows.
    ties: list[tuple[str, str]] = []
    linked: dict[str, list[str]] = {}  # each person with the others they exchanged with, either way
    flows: list[Flow] = []


class Signal(Shape):
    event_id: str
    type: str
    member_id: str
    circles: list[str] = []
    raised_at: datetime | None = None
    window_start: date | None = None
    window_end: date | None = None
    details: dict[str, Any] = {}
    active: bool = True
    cleared_at: datetime | None = None


class WaitingCount(Shape):
    """How many recorded exchanges wait: for the member's answer, and for the other party's to hers.
    Balance reads a bounded number of them; when it did not read them all, these are lower bounds."""

    for_me: int = 0
    for_others: int = 0
    complete: bool = True


class Dashboard(Shape):
    """Balance's one answer for the dashboard (GET /v1/members/{id}/dashboard)."""

    summary: Summary
    timeline: Timeline
    waiting: list[Exchange] = []  # the newest waiting for the member's answer (recorded by the other party)
    waiting_count: WaitingCount = WaitingCount()
    recent: list[Exchange] = []
    signals: list[Signal] = []  # in force, about the member


class PartitionStatus(Shape):
    topic: str
    partition: int
    applied_offset: int | None = None
    end_offset: int | None = None
    lag: int | None = None
    last_event_at: datetime | None = None


class BuildingProgress(Shape):
    """A replay filling a new generation (another process); `end`/`progress` are None while Kafka is away."""

    generation: str | int | None = None
    started_at: datetime | None = None
    applied: int = 0
    end: int | None = None
    progress: float | None = None

    @property
    def percent(self) -> int | None:
        return None if self.progress is None else max(0, min(100, int(self.progress * 100)))


class FailedReplay(Shape):
    """The latest replay, which failed or whose process ended mid-way (`interrupted`): its generation is
    not used (the next replay deletes it)."""

    generation: str | int | None = None
    started_at: datetime | None = None
    interrupted: bool = False


class ProjectionStatus(Shape):
    generation: str | int | None = None
    healthy: bool = True
    reason: str | None = None
    partitions: list[PartitionStatus] = []
    building: BuildingProgress | None = None
    failed_replay: FailedReplay | None = None


class DeadLetter(Shape):
    """A record set aside on a DLQ: where it came from and why; balance never sends the payload."""

    topic: str
    offset: int | None = None
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    error: str | None = None
    consumer: str | None = None  # the consumer group that parked it
    key: str | None = None
    size: int | None = None
    dead_lettered_at: datetime | None = None
    redriven: bool = False
    redriven_to: str | None = None

    @property
    def source_position(self) -> str:
        partition = "?" if self.source_partition is None else self.source_partition
        offset = "?" if self.source_offset is None else self.source_offset
        return f"{self.source_topic or '?'}[{partition}]@{offset}"


class DeadLetters(Shape):
    dead_letters: list[DeadLetter] = []
    counts: dict[str, int] = {}

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class Balance(Protocol):
    def health(self) -> str | None: ...
    def summary(self, member_id: str, window: str = "28d") -> Summary: ...
    def timeline(self, member_id: str, weeks: int = 12) -> Timeline: ...
    def dashboard(self, member_id: str, window: str = "28d", weeks: int = 12) -> Dashboard: ...
    def relationships(self, member_id: str, window: str = "90d") -> list[Relationship]: ...
    def relationship_page(self, member_id: str, window: str = "90d", *, limit: int = 25,
                          cursor: str | None = None) -> RelationshipPage: ...
    def exchanges(self, member_id: str, status: str | None = None, limit: int = 50) -> list[Exchange]: ...
    def exchange_page(self, member_id: str, *, status: str | None = None, kind: str | None = None,
                      other: str | None = None, since: date | None = None, until: date | None = None,
                      recorded_by: str | None = None, limit: int = 50,
                      cursor: str | None = None) -> ExchangePage: ...
    def exchange(self, exchange_id: str) -> Exchange: ...
    def appreciations(self, limit: int = 50, cursor: str | None = None) -> WallPage: ...
    def members(self, q: str = "", circle: str = "") -> list[Member]: ...
    def member(self, member_id: str) -> Member: ...
    def circles(self) -> list[Circle]: ...
    def circle_health(self, circle_id: str, window: str = "28d", picture: Picture = "none") -> CircleHealth: ...
    def signals(self, *, circle: str = "", member: str = "", active: bool = True) -> list[Signal]: ...
    def projection_status(self) -> ProjectionStatus: ...
    def dead_letters(self, topic: str = "", limit: int = 100) -> DeadLetters: ...


class HttpBalance(ServiceClient):
    service = "balance"

    def summary(self, member_id: str, window: str = "28d") -> Summary:
        return self._parse(Summary, self._call("GET", f"/v1/members/{segment(member_id)}/summary",
                                               params={"window": window}))

    def timeline(self, member_id: str, weeks: int = 12) -> Timeline:
        return self._parse(Timeline, self._call("GET", f"/v1/members/{segment(member_id)}/timeline",
                                                params={"weeks": weeks}))

    def dashboard(self, member_id: str, window: str = "28d", weeks: int = 12) -> Dashboard:
        return self._parse(Dashboard, self._call("GET", f"/v1/members/{segment(member_id)}/dashboard",
                                                 params={"window": window, "weeks": weeks}))

    def relationships(self, member_id: str, window: str = "90d") -> list[Relationship]:
        data = self._call("GET", f"/v1/members/{segment(member_id)}/relationships", params={"window": window})
        return self._parse_list(Relationship, data, "relationships")

    def relationship_page(self, member_id: str, window: str = "90d", *, limit: int = 25,
                          cursor: str | None = None) -> RelationshipPage:
        params: dict[str, object] = {"window": window, "limit": limit, **({"cursor": cursor} if cursor else {})}
        return self._parse(RelationshipPage, self._call("GET", f"/v1/members/{segment(member_id)}/relationships",
                                                        params=params))

    def exchanges(self, member_id: str, status: str | None = None, limit: int = 50) -> list[Exchange]:
        return self.exchange_page(member_id, status=status, limit=limit).exchanges

    def exchange_page(self, member_id: str, *, status: str | None = None, kind: str | None = None,
                      other: str | None = None, since: date | None = None, until: date | None = None,
                      recorded_by: str | None = None, limit: int = 50,
                      cursor: str | None = None) -> ExchangePage:
        """`recorded_by`: "me" (the member recorded them) or "other" (the other party did)."""
        params: dict[str, Any] = {"limit": limit}
        for name, value in (("status", status), ("kind", kind), ("with", other), ("cursor", cursor),
                            ("recorded_by", recorded_by),
                            ("from", since.isoformat() if since else None),
                            ("to", until.isoformat() if until else None)):
            if value:
                params[name] = value
        data = self._call("GET", f"/v1/members/{segment(member_id)}/exchanges", params=params)
        exchanges = self._parse_list(Exchange, data, "exchanges")
        cursor = data.get("next_cursor")
        return ExchangePage(exchanges=exchanges, next_cursor=cursor if isinstance(cursor, str) else None)

    def exchange(self, exchange_id: str) -> Exchange:
        return self._parse(Exchange, self._call("GET", f"/v1/exchanges/{segment(exchange_id)}"))

    def appreciations(self, limit: int = 50, cursor: str | None = None) -> WallPage:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        return self._parse(WallPage, self._call("GET", "/v1/appreciations", params=params))

    def members(self, q: str = "", circle: str = "") -> list[Member]:
        params = {k: v for k, v in (("q", q), ("circle", circle)) if v}
        return self._parse_list(Member, self._call("GET", "/v1/directory/members", params=params), "members")

    def member(self, member_id: str) -> Member:
        return self._parse(Member, self._call("GET", f"/v1/directory/members/{segment(member_id)}"))

    def circles(self) -> list[Circle]:
        return self._parse_list(Circle, self._call("GET", "/v1/directory/circles"), "circles")

    def circle_health(self, circle_id: str, window: str = "28d", picture: Picture = "none") -> CircleHealth:
        params = {"window": window} if picture == "none" else {"window": window, "picture": picture}
        return self._parse(CircleHealth, self._call("GET", f"/v1/circles/{segment(circle_id)}/health",
                                                    params=params))

    def signals(self, *, circle: str = "", member: str = "", active: bool = True) -> list[Signal]:
        params = {k: v for k, v in (("circle", circle), ("member", member)) if v}
        params["active"] = "true" if active else "false"
        return self._parse_list(Signal, self._call("GET", "/v1/signals", params=params), "signals")

    def projection_status(self) -> ProjectionStatus:
        return self._parse(ProjectionStatus, self._call("GET", "/v1/projection/status"))

    def dead_letters(self, topic: str = "", limit: int = 100) -> DeadLetters:
        params: dict[str, Any] = {"limit": limit}
        if topic:
            params["topic"] = topic
        data = self._call("GET", "/v1/dead-letters", params=params)
        if not isinstance(data, dict) or not isinstance(data.get("dead_letters"), list):
            raise Unavailable(self.service, "answered without a 'dead_letters' list")
        return self._parse(DeadLetters, data)
