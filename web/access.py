"""Who may see and do what. Pure functions over the directory's shapes, so the rules are easy to test.

- A member sees their own data (dashboard, relationships, exchanges they are a party to) and the
  measures of any circle (small circles stay private on balance's side).
- A lead also sees the member pages of the people in the circles they lead, and their circles' alerts.
- An operator sees the operations page: lag, dead letters, failed deliveries; never private notes.
"""

from __future__ import annotations

from collections.abc import Iterable

from .clients import Circle, Exchange, Member


def leads_a_circle_of(viewer: Member, target: Member) -> bool:
    return bool(set(viewer.leads_circles) & set(target.circles))


def can_view_member(viewer: Member, target: Member) -> bool:
    """The member page (numbers, capacity, alerts): the member themself and the leads of their circles."""
    return viewer.id == target.id or leads_a_circle_of(viewer, target)


def can_view_exchange(viewer: Member, exchange: Exchange) -> bool:
    """An exchange's note and thanks are between its two parties."""
    return exchange.involves(viewer.id)


def exchange_actions(viewer_id: str, exchange: Exchange) -> frozenset[str]:
    """Transitions only happen from `recorded`: the other party acknowledges or disputes, the recorder withdraws."""
    if exchange.status != "recorded" or not exchange.involves(viewer_id):
        return frozenset()
    if viewer_id == exchange.recorded_by:
        return frozenset({"withdraw"})
    return frozenset({"acknowledge", "dispute"})


def is_lead_of(viewer: Member, circle: Circle) -> bool:
    return viewer.id in circle.leads or circle.id in viewer.leads_circles


def can_see_flows(viewer: Member, circle: Circle) -> bool:
    """Who gives to whom, by name: for the circle's own members and its leads."""
    return circle.id in viewer.circles or is_lead_of(viewer, circle)


def can_see_signals(viewer: Member, circle: Circle) -> bool:
    return is_lead_of(viewer, circle)


def can_operate(viewer: Member) -> bool:
    return viewer.is_operator


def led_circle_ids(viewer: Member, circles: Iterable[Circle]) -> list[str]:
    return [c.id for c in circles if is_lead_of(viewer, c)]
