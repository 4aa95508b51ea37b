"""Who may see and do what. Pure functions over the directory's shapes, so the rules are easy to test.

- A member sees their own data (dashboard, relationships, exchanges they are a party to) and the
  measures of any circle (small circles stay private on balance's side).
- A lead also sees the member pages of the people in the circles they lead and in the circles nested
  under those, and those circles' alerts: notify tells a parent circle's leads about a nested circle
  whose own lead is the one alerted (or that has none), so what they are told about they can open.
- An operator sees the operations page: lag, dead letters, failed deliveries; never private notes.
"""

from __future__ import annotations

from collections.abc import Iterable

from reciprocity.contracts.vocabulary import RECORDED

from .clients.balance import Circle, Exchange, Member


def circles_in_care(viewer: Member, circles: Iterable[Circle]) -> set[str]:
    """The circles `viewer` leads and every circle nested under them, at any depth."""
    circles = list(circles)
    children: dict[str, list[str]] = {}
    for c in circles:
        if c.parent:
            children.setdefault(c.parent, []).append(c.id)
    found: set[str] = set()
    todo = [c.id for c in circles if is_lead_of(viewer, c)] + list(viewer.leads_circles)
    while todo:  # `found` also stops a (corrupt) cycle of parents
        circle_id = todo.pop()
        if circle_id not in found:
            found.add(circle_id)
            todo.extend(children.get(circle_id, ()))
    return found


def can_view_member(viewer: Member, target: Member, circles: Iterable[Circle]) -> bool:
    """The member page (numbers, capacity, alerts): the member themself and the leads of their circles
    (or of circles they are nested in)."""
    return viewer.id == target.id or bool(circles_in_care(viewer, circles) & set(target.circles))


def can_view_exchange(viewer: Member, exchange: Exchange) -> bool:
    """An exchange's note and thanks are between its two parties."""
    return exchange.involves(viewer.id)


def exchange_actions(viewer_id: str, exchange: Exchange) -> frozenset[str]:
    """Transitions only happen from `recorded`: the other party acknowledges or disputes, the recorder
    withdraws or corrects it."""
    if exchange.status != RECORDED or not exchange.involves(viewer_id):
        return frozenset()
    if viewer_id == exchange.recorded_by:
        return frozenset({"withdraw", "correct"})
    return frozenset({"acknowledge", "dispute"})


def is_lead_of(viewer: Member, circle: Circle) -> bool:
    return viewer.id in circle.leads or circle.id in viewer.leads_circles


def can_see_flows(viewer: Member, circle: Circle) -> bool:
    """Who is connected with whom, by name and without amounts: for the circle's own members and its leads."""
    return circle.id in viewer.circles or is_lead_of(viewer, circle)


def can_see_amounts(viewer: Member, circle: Circle, circles: Iterable[Circle]) -> bool:
    """How much one person gave another: for the two of them (on their own pages) and for the leads of their
    circles, here the leads of this circle and of the circles it is nested in; never its other members."""
    return circle.id in circles_in_care(viewer, circles)


def can_see_signals(viewer: Member, circle: Circle, circles: Iterable[Circle]) -> bool:
    return circle.id in circles_in_care(viewer, circles)


def can_operate(viewer: Member) -> bool:
    return viewer.is_operator
