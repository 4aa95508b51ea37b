"""The response models of the ledger's small read endpoints: its own write-side state, for tools that must check
before they write (the roster import, `seed --if-empty`). Members and the web read the balance
service's projections instead."""

from datetime import date, datetime

from pydantic import BaseModel, Field

from .state import Circle, Exchange, LedgerState, Member


class MemberView(BaseModel):
    id: str
    name: str
    email: str
    circles: list[str]
    role: str
    weekly_hours: float | None
    status: str
    paused_until: date | None
    leads_circles: list[str] = Field(description="the circles this member leads")
    own_alert_emails: bool = Field(default=True, description="she gets her own email when a signal is raised")
    daily_digest: bool = Field(default=True, description="she gets the daily email of what waits for her")


class CircleView(BaseModel):
    id: str
    name: str
    parent: str | None
    leads: list[str]
    children: list[str]
    members: list[str]


class ExchangeView(BaseModel):
    exchange_id: str
    giver: str
    receiver: str
    kind: str
    minutes: int
    occurred_on: date
    note: str
    recorded_by: str
    shared: bool
    giver_circles: list[str]
    receiver_circles: list[str]
    status: str = Field(description="recorded, acknowledged, disputed or withdrawn")
    recorded_at: datetime | None
    settled_by: str | None = Field(description="who acknowledged, disputed or withdrew it")
    settled_at: datetime | None


class Stats(BaseModel):
    circles: int
    members: int
    exchanges: int
    exchanges_recorded: int
    exchanges_acknowledged: int
    exchanges_disputed: int
    exchanges_withdrawn: int


def member_view(state: LedgerState, member: Member) -> MemberView:
    leads = sorted(c.id for c in state.circles.values() if member.id in c.leads)
    return MemberView(id=member.id, name=member.name, email=member.email, circles=list(member.circles),
                      role=member.role, weekly_hours=member.weekly_hours, status=member.status,
                      paused_until=member.paused_until, leads_circles=leads,
                      own_alert_emails=member.own_alert_emails, daily_digest=member.daily_digest)


def circle_view(state: LedgerState, circle: Circle) -> CircleView:
    return CircleView(
        id=circle.id, name=circle.name, parent=circle.parent, leads=list(circle.leads),
        children=sorted(c.id for c in state.circles.values() if c.parent == circle.id),
        members=sorted(m.id for m in state.members.values() if circle.id in m.circles),
    )


def exchange_view(exchange: Exchange) -> ExchangeView:
    return ExchangeView(
        exchange_id=exchange.id, giver=exchange.giver, receiver=exchange.receiver, kind=exchange.kind,
        minutes=exchange.minutes, occurred_on=exchange.occurred_on, note=exchange.note,
        recorded_by=exchange.recorded_by, shared=exchange.shared, giver_circles=list(exchange.giver_circles),
        receiver_circles=list(exchange.receiver_circles), status=exchange.status,
        recorded_at=exchange.recorded_at, settled_by=exchange.settled_by, settled_at=exchange.settled_at,
    )


def stats(state: LedgerState) -> Stats:
    return Stats(**state.counts())
