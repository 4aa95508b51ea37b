"""In-memory stand-ins for the ledger, balance and notify clients of the web (reciprocity.web.clients).

FakeLedger applies commands straight to a FakeBalance, so a unit test can record an exchange and see
it on the next page, the way the real stack does after a moment. Idempotent per key like the ledger:
the same key and request get the first answer, the same key with another request a 422 on the key.
Set `down = True` (or `fail_next`) to make a client raise like an unreachable service, and the
ledger's `lose_next_answer = True` for a timeout after the command was appended.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from reciprocity.common.service_client import Conflict, Invalid, NotFound, OutcomeUnknown, Unavailable
from reciprocity.contracts.commands import FieldError
from reciprocity.contracts.ids import exchange_id_for
from reciprocity.contracts.vocabulary import EXCHANGE_KINDS
from reciprocity.ledger.client import CommandReceipt, EmailSettings, LedgerExchange
from reciprocity.web.charts import linked_people
from reciprocity.web.clients import Clients
from reciprocity.web.clients.balance import (
    Capacity,
    Circle,
    CircleHealth,
    Dashboard,
    DeadLetter,
    DeadLetters,
    Exchange,
    ExchangePage,
    Flow,
    KindTotals,
    Member,
    PartitionStatus,
    ProjectionStatus,
    Relationship,
    RelationshipPage,
    Signal,
    Summary,
    Timeline,
    Totals,
    WaitingCount,
    WallPage,
    Week,
)


class FakeBalance:
    service = "balance"

    def __init__(self) -> None:
        self.down = False
        self.members_by_id: dict[str, Member] = {}
        self.circles_by_id: dict[str, Circle] = {}
        self.exchanges_by_id: dict[str, Exchange] = {}
        self.health_overrides: dict[str, CircleHealth] = {}
        self.pictures_asked: list[str] = []
        self.signal_list: list[Signal] = []
        self.status = ProjectionStatus(generation="g1", healthy=True, partitions=[
            PartitionStatus(topic="ledger.exchanges", partition=0, applied_offset=10, end_offset=12, lag=2,
                            last_event_at=datetime(2025, 3, 1, 12, 0, tzinfo=UTC)),
            PartitionStatus(topic="ledger.directory", partition=0, applied_offset=5, end_offset=5, lag=0),
        ])
        self.dead_letter_list: list[DeadLetter] = []
        self.dead_letters_error: str | None = None  # set: dead_letters() raises Unavailable with it (503)
        self.calls: list[str] = []
        self.dashboard_waiting = 10  # how many waiting exchanges the dashboard answer lists (balance's default)
        # Set: like balance, the dashboard counts only this many recorded exchanges, then says "at least".
        self.waiting_count_reads: int | None = None

    # -- building the world --

    def add_circle(self, circle_id: str, name: str = "", leads: list[str] | None = None) -> None:
        self.circles_by_id[circle_id] = Circle(id=circle_id, name=name or circle_id.title(), leads=leads or [])

    def add_member(self, member_id: str, name: str = "", circles: list[str] | None = None, role: str = "member",
                   **extra: Any) -> None:
        self.members_by_id[member_id] = Member(id=member_id, name=name or member_id.title(),
                                               email=f"{member_id}@example.org", circles=circles or [], role=role,
                                               **extra)

    def update_member(self, member_id: str, **changes: Any) -> None:
        self.members_by_id[member_id] = self.members_by_id[member_id].model_copy(update=changes)

    def add_exchange(self, giver: str, receiver: str, *, kind: str = "help", minutes: int = 60,
                     status: str = "recorded", recorded_by: str | None = None, occurred_on: date | None = None,
                     note: str = "", thanks: str | None = None, exchange_id: str | None = None,
                     shared_by_recorder: bool = False, shared_by_acknowledger: bool = False) -> Exchange:
        exchange = Exchange(
            exchange_id=exchange_id or uuid.uuid4().hex[:12], giver=giver, receiver=receiver,
            giver_name=self._name(giver), receiver_name=self._name(receiver), kind=kind, minutes=minutes,
            note=note, occurred_on=occurred_on or date.today(), recorded_by=recorded_by or giver,
            recorded_at=datetime.now(UTC), status=status, thanks=thanks,
            shared_by_recorder=shared_by_recorder, shared_by_acknowledger=shared_by_acknowledger,
        )
        self.exchanges_by_id[exchange.exchange_id] = exchange
        return exchange

    def _name(self, member_id: str) -> str:
        m = self.members_by_id.get(member_id)
        return m.display_name if m else member_id

    def _check(self, what: str) -> None:
        self.calls.append(what)
        if self.down:
            raise Unavailable(self.service, "did not answer")

    # -- the Balance protocol --

    def health(self) -> str | None:
        return "no answer (fake down)" if self.down else None

    def _mine(self, member_id: str, days: int | None = None) -> list[Exchange]:
        since = date.today() - timedelta(days=days) if days else date.min
        return [e for e in self.exchanges_by_id.values() if e.involves(member_id) and e.occurred_on > since]

    def summary(self, member_id: str, window: str = "28d") -> Summary:
        self._check("summary")
        self.member(member_id)
        days = int(window.rstrip("d"))
        totals = {"given": defaultdict(int), "received": defaultdict(int)}
        by_kind = {k: defaultdict(int) for k in EXCHANGE_KINDS}
        for e in self._mine(member_id, days):
            side = "given" if e.giver == member_id else "received"
            if e.status == "acknowledged":
                totals[side]["minutes"] += e.minutes
                totals[side]["count"] += 1
                by_kind[e.kind][f"{side}_minutes"] += e.minutes
                by_kind[e.kind][f"{side}_count"] += 1
            elif e.status == "recorded":
                totals[side]["pending_minutes"] += e.minutes
                totals[side]["pending_count"] += 1
                by_kind[e.kind][f"pending_{side}_minutes"] += e.minutes
        g, r = totals["given"]["minutes"], totals["received"]["minutes"]
        member = self.members_by_id[member_id]
        last7 = sum(e.minutes for e in self._mine(member_id, 7) if e.giver == member_id
                    and e.status in ("recorded", "acknowledged"))
        hours = member.weekly_hours
        return Summary(
            member_id=member_id, window_days=days, to=date.today(), **{"from": date.today() - timedelta(days=days)},
            given=Totals(**totals["given"]), received=Totals(**totals["received"]),
            by_kind={k: KindTotals(**v) for k, v in by_kind.items()},
            reciprocity_index=1.0 if max(g, r) == 0 else min(g, r) / max(g, r),
            capacity=Capacity(weekly_hours=hours, given_last_7_days_minutes=last7,
                              used_fraction=(last7 / (hours * 60)) if hours else None),
        )

    def timeline(self, member_id: str, weeks: int = 12) -> Timeline:
        self._check("timeline")
        today = date.today()
        this_monday = today - timedelta(days=today.weekday())
        starts = [this_monday - timedelta(weeks=weeks - 1 - i) for i in range(weeks)]
        rows = {s: {"given": defaultdict(int), "received": defaultdict(int)} for s in starts}
        for e in self._mine(member_id):
            start = e.occurred_on - timedelta(days=e.occurred_on.weekday())
            if start in rows and e.status == "acknowledged":
                rows[start]["given" if e.giver == member_id else "received"][e.kind] += e.minutes
        return Timeline(member_id=member_id, weeks=[
            Week(week_start=s, given=dict(rows[s]["given"]), received=dict(rows[s]["received"])) for s in starts
        ])

    def relationships(self, member_id: str, window: str = "90d") -> list[Relationship]:
        self._check("relationships")
        acc: dict[str, dict[str, Any]] = {}
        for e in self._mine(member_id, int(window.rstrip("d"))):
            if e.status not in ("acknowledged", "recorded"):
                continue
            # Like balance: settled (acknowledged) and pending (recorded) flows side by side.
            other = e.other_party(member_id)
            row = acc.setdefault(other, {"other": other, "other_name": self._name(other), "given_minutes": 0,
                                         "received_minutes": 0, "given_count": 0, "received_count": 0,
                                         "last_exchange_on": e.occurred_on,
                                         "pending_given_minutes": 0, "pending_received_minutes": 0,
                                         "pending_given_count": 0, "pending_received_count": 0,
                                         # every kind, zeros included, as balance answers
                                         **{f: {k: {"given_minutes": 0, "received_minutes": 0} for k in EXCHANGE_KINDS}
                                            for f in ("by_kind", "pending_by_kind")}})
            row["last_exchange_on"] = max(row["last_exchange_on"], e.occurred_on)
            side = "given" if e.giver == member_id else "received"
            pending = "pending_" if e.status == "recorded" else ""
            row[f"{pending}{side}_minutes"] += e.minutes
            row[f"{pending}{side}_count"] += 1
            row[f"{pending}by_kind"][e.kind][f"{side}_minutes"] += e.minutes
        return [Relationship(**row) for row in acc.values()]

    def relationship_page(self, member_id: str, window: str = "90d", *, limit: int = 25,
                          cursor: str | None = None) -> RelationshipPage:
        """Balance's order (by name); the cursor here is simply the position of the next person."""
        found = sorted(self.relationships(member_id, window), key=lambda r: (r.name.lower(), r.other))
        try:
            start = int(cursor or 0)
        except ValueError:  # balance answers 422 for a cursor it did not hand out
            raise Invalid(self.service, [FieldError(field="cursor", message="not a cursor")]) from None
        more = len(found) > start + limit
        return RelationshipPage(relationships=found[start:start + limit],
                                next_cursor=str(start + limit) if more else None)

    def dashboard(self, member_id: str, window: str = "28d", weeks: int = 12) -> Dashboard:
        self._check("dashboard")
        waiting = self.exchange_page(member_id, status="recorded", limit=10**6).exchanges
        reads = self.waiting_count_reads
        complete = reads is None or len(waiting) <= reads
        waiting = waiting if complete else waiting[-reads:]  # balance reads from the oldest end of its index
        mine = sum(e.recorded_by == member_id for e in waiting)
        return Dashboard(summary=self.summary(member_id, window), timeline=self.timeline(member_id, weeks),
                         waiting=self.exchange_page(member_id, status="recorded", recorded_by="other",
                                                    limit=self.dashboard_waiting).exchanges,
                         waiting_count=WaitingCount(for_me=len(waiting) - mine, for_others=mine, complete=complete),
                         recent=self.exchanges(member_id, limit=10), signals=self.signals(member=member_id))

    def exchanges(self, member_id: str, status: str | None = None, limit: int = 50) -> list[Exchange]:
        return self.exchange_page(member_id, status=status, limit=limit).exchanges

    def exchange_page(self, member_id: str, *, status: str | None = None, kind: str | None = None,
                      other: str | None = None, since: date | None = None, until: date | None = None,
                      recorded_by: str | None = None, limit: int = 50, cursor: str | None = None) -> ExchangePage:
        """Balance's filters and order; the cursor here is simply the position of the next row."""
        self._check("exchanges")
        found = [e for e in self._mine(member_id)
                 if (status is None or e.status == status) and (kind is None or e.kind == kind)
                 and (recorded_by is None or (e.recorded_by == member_id) == (recorded_by == "me"))
                 and (other is None or e.other_party(member_id) == other)
                 and (since is None or e.occurred_on >= since) and (until is None or e.occurred_on <= until)]
        found.sort(key=lambda e: (e.occurred_on, e.recorded_at or datetime.min, e.exchange_id), reverse=True)
        try:
            start = int(cursor or 0)
        except ValueError:  # balance answers 422 for a cursor it did not hand out
            raise Invalid(self.service, [FieldError(field="cursor", message="not a cursor")]) from None
        more = len(found) > start + limit
        return ExchangePage(exchanges=found[start:start + limit], next_cursor=str(start + limit) if more else None)

    def exchange(self, exchange_id: str) -> Exchange:
        self._check("exchange")
        if exchange_id not in self.exchanges_by_id:
            raise NotFound(self.service, "unknown exchange")
        return self.exchanges_by_id[exchange_id]

    def appreciations(self, limit: int = 50, cursor: str | None = None) -> WallPage:
        self._check("appreciations")
        shared = sorted((e for e in self.exchanges_by_id.values()
                         if e.status == "acknowledged" and e.shared_by_recorder and e.shared_by_acknowledger),
                        key=lambda e: (e.occurred_on, e.exchange_id), reverse=True)
        start = int(cursor) if cursor else 0
        page = [e.model_copy(update={"note": ""}) for e in shared[start:start + limit]]
        more = start + limit < len(shared)
        return WallPage(appreciations=page, next_cursor=str(start + limit) if more else None)

    def members(self, q: str = "", circle: str = "") -> list[Member]:
        self._check("members")
        q = q.lower()
        return [m for m in self.members_by_id.values()
                if (not q or q in m.id or q in m.name.lower()) and (not circle or circle in m.circles)]

    def member(self, member_id: str) -> Member:
        self._check("member")
        if member_id not in self.members_by_id:
            raise NotFound(self.service, "unknown member")
        member = self.members_by_id[member_id]
        leads = [c.id for c in self.circles_by_id.values() if member_id in c.leads]
        return member.model_copy(update={"leads_circles": leads})

    def circles(self) -> list[Circle]:
        self._check("circles")
        return [c.model_copy(update={"member_count": sum(c.id in m.circles for m in self.members_by_id.values())})
                for c in self.circles_by_id.values()]

    def circle_health(self, circle_id: str, window: str = "28d", picture: str = "none") -> CircleHealth:
        self._check("circle_health")
        self.pictures_asked.append(picture)
        if circle_id not in self.circles_by_id:
            raise NotFound(self.service, "unknown circle")
        if circle_id in self.health_overrides:
            return _with_picture(self.health_overrides[circle_id], picture)
        inside = {m.id for m in self.members_by_id.values() if circle_id in m.circles}
        if len(inside) < 5:
            return CircleHealth(circle_id=circle_id, name=self.circles_by_id[circle_id].name,
                                member_count=len(inside), private=True)
        flows: dict[tuple[str, str], int] = defaultdict(int)
        for e in self.exchanges_by_id.values():
            if e.status == "acknowledged" and e.giver in inside and e.receiver in inside:
                flows[(e.giver, e.receiver)] += e.minutes
        return _with_picture(CircleHealth(
            circle_id=circle_id, name=self.circles_by_id[circle_id].name, window_days=int(window.rstrip("d")),
            member_count=len(inside), private=False, participation_rate=0.8, mutual_ties=0.5, gini=0.35,
            cross_circle_breadth=0.2, mentoring_minutes=240, mentoring_count=4, feedback_cycles=1.5,
            flows=[Flow(giver=g, receiver=r, minutes=m) for (g, r), m in flows.items()],
        ), picture)

    def signals(self, *, circle: str = "", member: str = "", active: bool = True) -> list[Signal]:
        self._check("signals")
        return [s for s in self.signal_list if (not circle or circle in s.circles)
                and (not member or s.member_id == member) and s.active == active]

    def projection_status(self) -> ProjectionStatus:
        self._check("projection_status")
        return self.status

    def add_dead_letter(self, source_topic: str = "ledger.exchanges", *, partition: int = 0, offset: int = 0,
                        error: str = "not JSON: (root): Invalid JSON", **extra: Any) -> DeadLetter:
        dlq = f"{source_topic}.dlq"
        letter = DeadLetter(topic=dlq, offset=sum(d.topic == dlq for d in self.dead_letter_list),
                            source_topic=source_topic, source_partition=partition, source_offset=offset, error=error,
                            key=extra.pop("key", f"x-{offset}"), size=extra.pop("size", 42),
                            dead_lettered_at=extra.pop("dead_lettered_at", datetime.now(UTC)), **extra)
        self.dead_letter_list.append(letter)
        return letter

    def dead_letters(self, topic: str = "", limit: int = 100) -> DeadLetters:
        self._check("dead_letters")
        if self.dead_letters_error:
            raise Unavailable(self.service, self.dead_letters_error)
        dlqs = [f"{t}.dlq" for t in ("ledger.directory", "ledger.exchanges", "balance.signals")]
        wanted = [topic if topic.endswith(".dlq") else f"{topic}.dlq"] if topic else dlqs
        chosen = [d for d in self.dead_letter_list if d.topic in wanted]
        newest = sorted(chosen, key=lambda d: d.dead_lettered_at or datetime.min.replace(tzinfo=UTC), reverse=True)
        return DeadLetters(dead_letters=newest[:limit], counts={t: sum(d.topic == t for d in chosen) for t in wanted})


class FakeLedger:
    service = "ledger"

    def __init__(self, balance: FakeBalance) -> None:
        self.balance = balance
        self.forgotten: list[dict[str, Any]] = []  # what GET /v1/forgettings answers
        self.down = False
        self.fail_next: Exception | None = None
        # True: the next command is appended, then the answer is lost (OutcomeUnknown, like a read timeout).
        self.lose_next_answer = False
        # True: recorded exchanges stay in the ledger only (`unprojected`) until `catch_up()`, like a
        # balance that has not read them yet.
        self.projection_lags = False
        self.unprojected: dict[str, Exchange] = {}
        self.settings: dict[str, EmailSettings] = {}
        self.commands: list[tuple[str, dict[str, Any], str]] = []  # (name, body, key), appended ones only
        self._answers: dict[str, tuple[tuple[str, dict[str, Any]], CommandReceipt]] = {}  # key: (request, first answer)

    def health(self) -> str | None:
        return "no answer (fake down)" if self.down else None

    def exchange(self, exchange_id: str) -> LedgerExchange:
        if self.down:
            raise Unavailable(self.service, "did not answer")
        found = self.unprojected.get(exchange_id) or self.balance.exchanges_by_id.get(exchange_id)
        if found is None:
            raise NotFound(self.service, f"there is no exchange '{exchange_id}'.")
        return LedgerExchange(exchange_id=found.exchange_id, giver=found.giver, receiver=found.receiver,
                              recorded_by=found.recorded_by, status=found.status)

    def catch_up(self) -> None:
        """Balance reads what the ledger appended meanwhile."""
        self.balance.exchanges_by_id.update(self.unprojected)
        self.unprojected.clear()

    def _append(self, name: str, body: dict[str, Any], key: str, apply: Any, new_id: str | None = None,
                check: Any = None) -> CommandReceipt:
        if self.down:
            raise Unavailable(self.service, "Kafka is unreachable", retry_after=2)
        if self.fail_next is not None:
            err, self.fail_next = self.fail_next, None
            raise err
        if key in self._answers:  # the ledger looks at the key before anything else
            request, answer = self._answers[key]
            if request != (name, body):
                raise Invalid(self.service, [FieldError(field="Idempotency-Key", message=(
                    "this Idempotency-Key was already used for a different request; a retry must repeat the "
                    "same method, path and body, and a new request needs a new key."))])
            return answer  # same key and request: the first answer, nothing appended
        if check is not None:
            check()
        apply()
        self.commands.append((name, body, key))
        answer = CommandReceipt(event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, key)), topic="ledger.exchanges",
                          partition=0, offset=len(self.commands), id=new_id)
        self._answers[key] = ((name, body), answer)
        if self.lose_next_answer:
            self.lose_next_answer = False
            raise OutcomeUnknown(self.service, "did not answer in time")
        return answer

    def record_exchange(self, body: dict[str, Any], *, key: str) -> CommandReceipt:
        def check() -> None:
            for party in ("giver", "receiver"):
                if body[party] not in self.balance.members_by_id:
                    raise Invalid(self.service, [FieldError(field=party, message=f"unknown member {body[party]!r}")])

        new_id = exchange_id_for(key)  # as the ledger names it

        def apply() -> None:
            self.balance.add_exchange(
                body["giver"], body["receiver"], kind=body["kind"], minutes=body["minutes"],
                occurred_on=date.fromisoformat(body["occurred_on"]), recorded_by=body["recorded_by"],
                note=body["note"], exchange_id=new_id, shared_by_recorder=body.get("shared", False))
            if self.projection_lags:
                self.unprojected[new_id] = self.balance.exchanges_by_id.pop(new_id)

        return self._append("record_exchange", body, key, apply, new_id, check)

    def _transition(self, name: str, exchange_id: str, by: str, key: str, status: str,
                    **changes: Any) -> CommandReceipt:
        def check() -> None:
            exchange = self.balance.exchanges_by_id.get(exchange_id)
            if exchange is None:
                raise NotFound(self.service, "unknown exchange")
            if exchange.status != "recorded":
                raise Conflict(self.service, f"exchange is {exchange.status}")

        def apply() -> None:
            exchange = self.balance.exchanges_by_id[exchange_id]
            self.balance.exchanges_by_id[exchange_id] = exchange.model_copy(update={"status": status, **changes})

        return self._append(name, {"exchange_id": exchange_id, "by": by, **changes}, key, apply, check=check)

    def acknowledge(self, exchange_id: str, *, by: str, thanks: str, shared: bool, key: str) -> CommandReceipt:
        return self._transition("acknowledge", exchange_id, by, key, "acknowledged", thanks=thanks,
                                shared_by_acknowledger=shared)

    def dispute(self, exchange_id: str, *, by: str, reason: str, key: str) -> CommandReceipt:
        return self._transition("dispute", exchange_id, by, key, "disputed", dispute_reason=reason)

    def withdraw(self, exchange_id: str, *, by: str, key: str) -> CommandReceipt:
        return self._transition("withdraw", exchange_id, by, key, "withdrawn")

    def declare_capacity(self, member_id: str, *, weekly_hours: float | None, key: str) -> CommandReceipt:
        return self._append("declare_capacity", {"member": member_id, "weekly_hours": weekly_hours}, key,
                            lambda: self.balance.update_member(member_id, weekly_hours=weekly_hours))

    def change_availability(self, member_id: str, *, status: str, paused_until: date | None,
                            key: str) -> CommandReceipt:
        return self._append("change_availability", {"member": member_id, "status": status,
                                                    "paused_until": paused_until}, key,
                            lambda: self.balance.update_member(member_id, status=status, paused_until=paused_until))

    def correct(self, exchange_id: str, *, by: str, kind: str, minutes: int, occurred_on: date, note: str,
                key: str) -> CommandReceipt:
        found = self.balance.exchanges_by_id[exchange_id]

        def check() -> None:
            if found.status != "recorded":
                raise Conflict(self.service, f"exchange {exchange_id} is already {found.status}")

        def apply() -> None:
            previous = {"kind": found.kind, "minutes": found.minutes, "occurred_on": found.occurred_on.isoformat()}
            self.balance.exchanges_by_id[exchange_id] = found.model_copy(update={
                "kind": kind, "minutes": minutes, "occurred_on": occurred_on, "note": note,
                "correction": {"previous": previous, "note_changed": note != found.note,
                               "at": datetime.now(UTC).isoformat()}})

        return self._append("correct", {"exchange": exchange_id, "by": by, "kind": kind, "minutes": minutes,
                                        "occurred_on": occurred_on, "note": note}, key, apply, check=check)

    def share(self, exchange_id: str, *, by: str, shared: bool, key: str) -> CommandReceipt:
        def apply() -> None:
            found = self.balance.exchanges_by_id[exchange_id]
            column = "shared_by_recorder" if by == found.recorded_by else "shared_by_acknowledger"
            self.balance.exchanges_by_id[exchange_id] = found.model_copy(update={column: shared})

        return self._append("share", {"exchange": exchange_id, "by": by, "shared": shared}, key, apply)

    def email_settings(self, member_id: str) -> EmailSettings:
        if self.down:
            raise Unavailable(self.service, "did not answer")
        return self.settings.get(member_id, EmailSettings())

    def set_email_settings(self, member_id: str, *, own_alert_emails: bool, daily_digest: bool,
                           key: str) -> CommandReceipt:
        chosen = EmailSettings(own_alert_emails=own_alert_emails, daily_digest=daily_digest)
        return self._append("set_email_settings", {"member": member_id, **chosen.model_dump()}, key,
                            lambda: self.settings.__setitem__(member_id, chosen))

    def forgettings(self) -> list[dict[str, Any]]:
        if self.down:
            raise Unavailable("ledger", "down for the test")
        return list(self.forgotten)


class FakeNotify:
    service = "notify"

    def __init__(self) -> None:
        self.down = False
        self.failed: list[dict[str, Any]] = []

    def health(self) -> str | None:
        return "no answer (fake down)" if self.down else None

    def failed_deliveries(self) -> list[dict[str, Any]]:
        if self.down:
            raise Unavailable(self.service, "did not answer")
        return self.failed


def fake_clients() -> Clients:
    balance = FakeBalance()
    return Clients(ledger=FakeLedger(balance), balance=balance, notify=FakeNotify())


def demo_world(clients: Clients) -> None:
    """A small organisation: two circles (one big enough to show measures), a lead and an operator."""
    b: FakeBalance = clients.balance  # type: ignore[assignment]
    b.add_circle("garden", "Garden circle", leads=["lena"])
    b.add_circle("kitchen", "Kitchen", leads=["omar"])
    people = [("ada", "Ada Lovelace", ["garden"]), ("ben", "Ben Okafor", ["garden"]),
              ("chen", "Chen Wei", ["garden"]), ("dara", "Dara Nolan", ["garden", "kitchen"]),
              ("lena", "Lena Vogel", ["garden"]), ("omar", "Omar Haddad", ["kitchen"]),
              ("ops", "Olu Operator", [])]
    for member_id, name, circles in people:
        b.add_member(member_id, name, circles, role="operator" if member_id == "ops" else "member")
    b.update_member("ada", weekly_hours=4.0)
    today = date.today()
    plan = [("ada", "ben", "mentoring", 90, 2), ("ben", "ada", "feedback", 30, 3), ("ada", "chen", "help", 120, 9),
            ("chen", "ada", "care", 45, 12), ("dara", "ada", "knowledge", 60, 20), ("ada", "lena", "mentoring", 60, 30),
            ("lena", "ben", "feedback", 40, 15), ("ben", "chen", "resource", 30, 40), ("ada", "ben", "help", 75, 50)]
    for giver, receiver, kind, minutes, days_ago in plan:
        b.add_exchange(giver, receiver, kind=kind, minutes=minutes, status="acknowledged",
                       occurred_on=today - timedelta(days=days_ago), note=f"{kind} session",
                       thanks="Thank you, that helped a lot." if kind != "resource" else "",
                       shared_by_recorder=True, shared_by_acknowledger=kind in ("mentoring", "care"))
    b.add_exchange("ben", "ada", kind="feedback", minutes=25, recorded_by="ben", occurred_on=today - timedelta(days=1),
                   note="Notes on your garden plan", exchange_id="pending-for-ada")
    b.add_exchange("ada", "dara", kind="help", minutes=50, recorded_by="ada", occurred_on=today,
                   note="Moved the compost bins", exchange_id="ada-waiting")
    b.signal_list.append(Signal(
        event_id="sig-1", type="MemberOverextended", member_id="ada", circles=["garden"],
        raised_at=datetime.now(UTC) - timedelta(days=1), window_start=today - timedelta(days=28), window_end=today,
        details={"reason": "ratio", "given_minutes": 345, "received_minutes": 75, "ratio": 4.6,
                 "given_last_7_days": 90, "weekly_capacity_minutes": 240}))


def freeze_clock(monkeypatch: Any, now: datetime) -> None:
    """Set the clock the contracts read (today_utc, latest_today), so a time of day can be tested."""
    from reciprocity.contracts import commands

    class Frozen(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Frozen:  # type: ignore[override]
            return now  # type: ignore[return-value]

    monkeypatch.setattr(commands, "datetime", Frozen)


# -- Flask test-client helpers -------------------------------------------------------------------------

DEMO_PASSWORD = "reciprocity-demo"


_TEMPLATE_DB: list[str] = []


def _seeded_copy(path: str) -> None:
    """Argon2id is slow on purpose (~0.1 s a hash): hash the demo members once, copy the file per test."""
    import shutil
    import tempfile

    from reciprocity.web.accounts import AccountStore

    if not _TEMPLATE_DB:
        template = f"{tempfile.mkdtemp(prefix='web-accounts-')}/template.db"
        store = AccountStore(f"sqlite:///{template}")
        for member_id in ("ada", "ben", "chen", "dara", "lena", "omar", "ops"):
            store.set_password(member_id, DEMO_PASSWORD)
        store.engine.dispose()
        _TEMPLATE_DB.append(template)
    shutil.copyfile(_TEMPLATE_DB[0], path)


def make_app(database_url: str, clients: Clients | None = None, **settings: Any):  # type: ignore[no-untyped-def]
    """The real app over fake clients (demo_world already loaded), every demo member with DEMO_PASSWORD."""
    from pathlib import Path

    from reciprocity.web.app import create_app
    from reciprocity.web.settings import WebSettings

    if clients is None:
        clients = fake_clients()
        demo_world(clients)
    path = database_url.removeprefix("sqlite:///")
    if database_url.startswith("sqlite:///") and not Path(path).exists():
        _seeded_copy(path)
    return create_app(WebSettings(database_url=database_url, **settings), clients)


def hidden(html: str, name: str) -> str:
    """The value of the first hidden input called `name` in a page."""
    import re

    found = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', html)
    assert found, f"no hidden input {name!r} in the page"
    return found.group(1)


def sign_in(client, member_id: str, password: str = DEMO_PASSWORD):  # type: ignore[no-untyped-def]
    token = hidden(client.get("/signin").get_data(as_text=True), "csrf_token")
    return client.post("/signin", data={"csrf_token": token, "member_id": member_id, "password": password})


def _with_picture(health: CircleHealth, picture: str) -> CircleHealth:
    """As balance answers: the flows for `flows`, the pairs alone for `ties` (each person with the others
    for `linked`), none of them for `none`."""
    ties = sorted({(min(f.giver, f.receiver), max(f.giver, f.receiver)) for f in health.flows if f.giver != f.receiver})
    linked = linked_people(ties)
    return health.model_copy(update={"flows": health.flows if picture == "flows" else [],
                                     "ties": ties if picture == "ties" else [],
                                     "linked": {p: sorted(o) for p, o in sorted(linked.items())}
                                     if picture == "linked" else {}})
