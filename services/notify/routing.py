"""Who hears about a signal: pure rules over a snapshot of the directory (no I/O).

For each circle the signal names (the member's circles when balance raised it):

- the circle's leads are told, except the member themself: nobody gets an alert about themselves;
- when the member leads that circle themself, the circle's other leads are told *and* the leads of the
  parent circle, because a lead's load is the business of the circle that the lead answers to;
- when the circle has no lead left to tell (none at all, only the member, or only paused ones), the
  nearest ancestor circle that has one is told instead, so an alert never falls on the floor;
- a paused lead (on leave, "opt out without stigma") is not burdened with alerts: they are skipped with
  a recorded reason and do not count as a lead to tell.

A lead of several of the member's circles is told once, with every reason. When a member, circle or
lead named along the way is not in the directory yet (topics are consumed independently, so a signal
can overtake the directory), the routing is incomplete and lists what is missing: the caller waits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from reciprocity.contracts.vocabulary import ACTIVE, PAUSED

Because = Literal["lead", "member_leads_circle", "no_lead_to_tell"]


@dataclass(frozen=True)
class MemberFacts:
    member_id: str
    name: str | None = None
    email: str | None = None
    status: str = ACTIVE
    paused_until: date | None = None
    weekly_hours: float | None = None
    own_alert_emails: bool = True  # she hears of signals about her (unless she turned it off)
    daily_digest: bool = True

    @property
    def registered(self) -> bool:
        """Known by its registration (name and email), not only by a later event about it."""
        return bool(self.name and self.email)

    def paused_on(self, day: date) -> bool:
        return self.status == PAUSED and (self.paused_until is None or self.paused_until >= day)

    @property
    def display_name(self) -> str:
        return self.name or self.member_id


@dataclass(frozen=True)
class CircleFacts:
    circle_id: str
    name: str | None = None
    parent: str | None = None
    leads: tuple[str, ...] = ()

    @property
    def display_name(self) -> str:
        return self.name or self.circle_id


@dataclass(frozen=True)
class Directory:
    """The part of the directory a signal needs: the member, their circles and ancestors, the leads."""

    members: Mapping[str, MemberFacts] = field(default_factory=dict)
    circles: Mapping[str, CircleFacts] = field(default_factory=dict)

    def circle_name(self, circle_id: str) -> str:
        circle = self.circles.get(circle_id)
        return circle.display_name if circle else circle_id


@dataclass(frozen=True)
class Via:
    """Why one recipient is told: as a lead of `circle_id`, about the member's circle `about_circle_id`."""

    circle_id: str
    about_circle_id: str
    because: Because


@dataclass(frozen=True)
class Recipient:
    member_id: str
    name: str
    email: str
    via: tuple[Via, ...]


@dataclass(frozen=True)
class Skipped:
    member_id: str
    email: str | None
    reason: str


@dataclass(frozen=True)
class Routing:
    recipients: tuple[Recipient, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    missing: tuple[str, ...] = ()  # e.g. "member alice", "circle design", "lead bob"
    # Circles with nobody at all to tell (no lead, no ancestor with one): said in the failure reason.
    untold: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.missing


def route(member_id: str, circles: Iterable[str], directory: Directory, *, on: date) -> Routing:
    """The leads to tell about `member_id`'s signal raised for `circles`, as of day `on`."""
    missing: list[str] = []
    member = directory.members.get(member_id)
    if member is None or not member.registered:
        missing.append(f"member {member_id}")

    told: dict[str, list[Via]] = {}
    skipped: dict[str, Skipped] = {}
    untold: list[str] = []

    def available(lead_id: str) -> bool:
        """A lead we can tell; records why not, or what is missing to know."""
        if lead_id == member_id:
            return False
        lead = directory.members.get(lead_id)
        if lead is None or not lead.registered:
            missing.append(f"lead {lead_id}")
            return False
        if lead.paused_on(on):
            until = f" until {lead.paused_until.isoformat()}" if lead.paused_until else ""
            skipped.setdefault(lead_id, Skipped(lead_id, lead.email, f"lead {lead_id} is paused{until}"))
            return False
        return True

    def tell(lead_id: str, via: Via) -> None:
        reasons = told.setdefault(lead_id, [])
        if via not in reasons:
            reasons.append(via)

    for circle_id in dict.fromkeys(circles):  # in order, once each
        circle = directory.circles.get(circle_id)
        if circle is None:
            missing.append(f"circle {circle_id}")
            continue
        others = [lead for lead in circle.leads if available(lead)]
        for lead in others:
            tell(lead, Via(circle_id, circle_id, "lead"))
        member_leads = member_id in circle.leads
        if others and not member_leads:
            continue
        because: Because = "member_leads_circle" if member_leads else "no_lead_to_tell"
        if not _tell_ancestor(circle, directory, available, tell, because, missing) and not others:
            untold.append(circle_id)

    recipients = tuple(
        Recipient(lead_id, directory.members[lead_id].display_name, directory.members[lead_id].email or "",
                  tuple(vias))
        for lead_id, vias in told.items()
    )
    return Routing(
        recipients=recipients,
        skipped=tuple(s for lead_id, s in skipped.items() if lead_id not in told),
        missing=tuple(dict.fromkeys(missing)),
        untold=tuple(untold),
    )


def _tell_ancestor(circle: CircleFacts, directory: Directory, available, tell, because: Because,  # type: ignore[no-untyped-def]
                   missing: list[str]) -> bool:
    """Tell the leads of the nearest ancestor of `circle` that has one to tell; True if someone was."""
    seen = {circle.circle_id}
    parent_id = circle.parent
    while parent_id and parent_id not in seen:  # `seen` guards against a (corrupt) cycle of parents
        seen.add(parent_id)
        parent = directory.circles.get(parent_id)
        if parent is None:
            missing.append(f"circle {parent_id}")
            return False
        leads = [lead for lead in parent.leads if available(lead)]
        if leads:
            for lead in leads:
                tell(lead, Via(parent_id, circle.circle_id, because))
            return True
        parent_id = parent.parent
    return False
