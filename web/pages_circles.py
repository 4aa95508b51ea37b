"""Circles and people seen from outside oneself: circle health, member pages for leads, the wall."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Blueprint, Response, abort, request
from reciprocity.contracts.vocabulary import EXCHANGE_KINDS

from . import access
from .charts import (
    KIND_COLOURS,
    MAX_RING_PEOPLE,
    FlowGraph,
    TieMatrix,
    balance_chart,
    connection_graph,
    flow_graph,
    tie_matrix,
)
from .clients.balance import Circle, Flow, Picture
from .pages_me import relationships_by_name
from .signal_words import SIGNAL_HINTS_SELF, SIGNAL_WORDS_SELF
from .ui import WINDOW_LABELS, WINDOWS, clients, directory, forbid, me, render_page, window_arg

bp = Blueprint("circles", __name__)

SIGNAL_WORDS = {
    "MemberOverextended": "may be over-extended",
    "MemberDisconnected": "has not exchanged with anyone for a while",
}
SIGNAL_HINTS = {
    "MemberOverextended": "Ask how they are, and whether some of what they carry could move to someone else "
                          "(rebalancing mentoring pairs often helps).",
    "MemberDisconnected": "A friendly check-in often helps more than a reminder: ask how they are doing.",
}

@bp.get("/circles")
def circles() -> Response:
    member = me()
    everything = directory().circles()
    mine = [c for c in everything if c.id in member.circles or access.is_lead_of(member, c)]
    others = [c for c in everything if c not in mine]
    return render_page("circles.html", mine=sorted(mine, key=_by_name), others=sorted(others, key=_by_name),
                       me_id=member.id)


def _by_name(circle: Circle) -> tuple[str, str]:
    return (circle.name or circle.id).lower(), circle.id


@bp.get("/circles/<circle_id>")
def circle(circle_id: str) -> Response:
    member = me()
    balance = clients().balance
    window = window_arg()
    everything = directory().circles()
    found = next((c for c in everything if c.id == circle_id), None)
    if found is None:
        abort(404)
    is_lead = access.is_lead_of(member, found)
    in_care = access.can_see_signals(member, found, everything)
    # Minutes between two people are for the two of them and their leads: the leads (of this circle or
    # of one it is nested in) see the weighted picture and every flow, listed by name; the circle's other
    # members see only who is connected with whom, with neither amounts nor directions. Balance is asked
    # for no more than the viewer may see.
    can_see_amounts = access.can_see_amounts(member, found, everything)
    can_see_ties = access.can_see_flows(member, found)
    picture: Picture = "flows" if can_see_amounts else ("linked" if can_see_ties else "none")
    health = balance.circle_health(circle_id, window, picture)
    people = directory().circle_members(circle_id) if (in_care or can_see_ties) else []
    names = {p.id: p.display_name for p in people}
    graph: FlowGraph | None = None
    matrix: TieMatrix | None = None
    flow_rows: list[Flow] = []
    connections: list[tuple[str, str]] = []
    if not health.private and can_see_amounts and health.flows:
        graph = flow_graph(health.flows, names)
        flow_rows = sorted(health.flows, key=lambda f: (names.get(f.giver, f.giver).lower(),
                                                        names.get(f.receiver, f.receiver).lower(),
                                                        f.giver, f.receiver))
    elif not health.private and can_see_ties and health.linked:
        linked = {person: set(others) for person, others in health.linked.items()}
        if len(set(names) | set(linked)) > MAX_RING_PEOPLE:
            matrix = tie_matrix(linked, names)
        else:
            graph = connection_graph([(a, b) for a, others in health.linked.items() for b in others if a < b],
                                     names)
        connections = connections_by_name(linked, names)
    signals = balance.signals(circle=circle_id, active=True) if in_care else []
    all_names = {**names}
    for s in signals:
        all_names.setdefault(s.member_id, s.member_id)
    return render_page(
        "circle.html", circle=found, health=health, graph=graph, matrix=matrix, signals=signals, is_lead=is_lead,
        in_care=in_care, people=sorted(people, key=lambda p: p.display_name.lower()), names=all_names,
        window=window, windows=WINDOWS, window_labels=WINDOW_LABELS, signal_words=SIGNAL_WORDS,
        signal_hints=SIGNAL_HINTS, can_see_flows=can_see_amounts, can_see_ties=can_see_ties,
        flow_rows=flow_rows, connections=connections, me_id=member.id,
    )


def connections_by_name(linked: Mapping[str, set[str]], names: Mapping[str, str]) -> list[tuple[str, str]]:
    """Each person with the people they exchanged with (`linked`: balance's `linked` picture), both by name: the
    picture's words, without amounts. The others come joined into one line, so that the page writes a
    line per person, not a name per tie."""

    label = {p: names.get(p, p) for p in {*linked, *(o for others in linked.values() for o in others)}}
    # Everyone's place in the order of names, once: each line then sorts numbers, not names (a saturated
    # circle has a line of some sixty names per person).
    rank = {p: i for i, p in enumerate(sorted(label, key=lambda p: (label[p].lower(), p)))}
    return [(label[p], ", ".join(label[o] for o in sorted(others, key=rank.__getitem__)))
            for p, others in sorted(linked.items(), key=lambda kv: rank[kv[0]])]


@bp.get("/members/<member_id>")
def member_page(member_id: str) -> Response:
    viewer = me()
    balance = clients().balance
    target = balance.member(member_id)
    circles = directory().circles()
    if not access.can_view_member(viewer, target, circles):
        forbid(f"{target.display_name}'s page is for them and for the leads of their circles. "
               "If you are thinking of them, a direct conversation is often the kindest start.")
    window = window_arg()
    summary = balance.summary(target.id, window)
    timeline = balance.timeline(target.id, weeks=12)
    relationships = relationships_by_name(target.id, "90d")
    signals = balance.signals(member=target.id, active=True)
    circle_names = {c.id: c.name or c.id for c in circles}
    in_care = access.circles_in_care(viewer, circles)
    is_self = target.id == viewer.id
    return render_page(
        "member.html", target=target, is_self=is_self, summary=summary,
        chart=balance_chart(timeline.weeks), weeks=timeline.weeks, kinds=EXCHANGE_KINDS, colours=KIND_COLOURS,
        relationships=relationships, signals=signals,
        signal_words=SIGNAL_WORDS_SELF if is_self else SIGNAL_WORDS,
        signal_hints=SIGNAL_HINTS_SELF if is_self else SIGNAL_HINTS,
        circle_names=circle_names, window=window, windows=WINDOWS, window_labels=WINDOW_LABELS,
        led_here=[c for c in target.circles if c in viewer.leads_circles],
        in_care_here=[c for c in target.circles if c in in_care and c not in viewer.leads_circles],
    )


@bp.get("/wall")
def wall() -> Response:
    cursor = request.args.get("cursor") or None
    page = clients().balance.appreciations(limit=WALL_PAGE, cursor=cursor)
    return render_page("wall.html", appreciations=page.appreciations, next_cursor=page.next_cursor,
                       first_page=cursor is None)


WALL_PAGE = 30
