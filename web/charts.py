"""Geometry of the two pictures, computed here and drawn as inline SVG by the templates.

- The balance chart: one column per week, what the member gave stacked above the line and what they
  received stacked below it, coloured by kind. Balance is the two sides together, not a score.
- The flow graph of a circle: members on a ring, an arrow from giver to receiver whose width grows
  with the minutes. Arrows bend to one side, so A→B and B→A stay two visible arrows.
- Who is connected with whom, for a circle's members: a ring with plain lines in a small circle, a
  grid of names (a mark where a row's person and a column's person exchanged) in a bigger one.

Pure: no Flask, no I/O. Both come with a table fallback in the templates for screen readers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from reciprocity.contracts.vocabulary import EXCHANGE_KINDS

from .clients.balance import Flow, Week
from .format import day, minutes

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
KIND_COLOURS = {
    "mentoring": "#0072B2",
    "feedback": "#E69F00",
    "help": "#009E73",
    "knowledge": "#CC79A7",
    "resource": "#56B4E9",
    "care": "#D55E00",
}


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    fill: str
    title: str


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "middle"


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass
class BalanceChart:
    width: int
    height: int
    rects: list[Rect] = field(default_factory=list)
    x_labels: list[Label] = field(default_factory=list)
    y_labels: list[Label] = field(default_factory=list)
    grid: list[Line] = field(default_factory=list)
    axis: Line | None = None
    given_label: Label | None = None
    received_label: Label | None = None
    empty: bool = True


def _nice_ceiling_hours(max_minutes: int) -> int:
    """The top of the scale in minutes: a round number of hours at or above the largest column."""
    hours = max(1.0, max_minutes / 60)
    for step in (1, 2, 4, 5, 8, 10, 15, 20, 25, 30, 40, 50, 60, 80, 100, 150, 200):
        if hours <= step:
            return step * 60
    return math.ceil(hours / 100) * 100 * 60


def balance_chart(weeks: Sequence[Week], *, width: int = 720, height: int = 280) -> BalanceChart:
    left, right, top, bottom = 100, 12, 12, 30
    chart = BalanceChart(width=width, height=height)
    if not weeks:
        return chart
    plot_w, plot_h = width - left - right, height - top - bottom
    axis_y = top + plot_h / 2
    half = plot_h / 2
    biggest = max(max(sum(w.given.values()), sum(w.received.values())) for w in weeks)
    chart.empty = biggest == 0
    scale_max = _nice_ceiling_hours(biggest)
    band = plot_w / len(weeks)
    bar = max(4.0, min(36.0, band * 0.62))

    for fraction in (1.0, 0.5):
        for sign in (-1, 1):
            y = axis_y - sign * half * fraction
            chart.grid.append(Line(left, round(y, 1), width - right, round(y, 1)))
            chart.y_labels.append(Label(left - 8, round(y + 4, 1), minutes(round(scale_max * fraction)), "end"))
    chart.y_labels.append(Label(left - 8, round(axis_y + 4, 1), "0", "end"))
    chart.axis = Line(left, axis_y, width - right, axis_y)
    # Which side is which, in the margin beside the scale: given above the line, received below.
    chart.given_label = Label(8, round(axis_y - half / 2 - 14, 1), "↑ given", "start")
    chart.received_label = Label(8, round(axis_y + half / 2 + 22, 1), "↓ received", "start")

    label_every = 1 if len(weeks) <= 8 else 2
    bar_w = round(bar, 1)
    for i, week in enumerate(weeks):
        # What every bar of the week shares, worked out once a week rather than once a bar (a member busy
        # every week has some hundred bars: they were most of the chart's cost).
        x = round(left + i * band + (band - bar) / 2, 1)
        week_of = f"Week of {day(week.week_start)}"
        up = axis_y
        down = axis_y
        for kind in EXCHANGE_KINDS:
            given = week.given.get(kind, 0)
            if given:
                h = half * given / scale_max
                up -= h
                chart.rects.append(Rect(x, round(up, 1), bar_w, round(h, 1), KIND_COLOURS[kind],
                                        f"{week_of}: gave {minutes(given)} of {kind}"))
            received = week.received.get(kind, 0)
            if received:
                h = half * received / scale_max
                chart.rects.append(Rect(x, round(down, 1), bar_w, round(h, 1), KIND_COLOURS[kind],
                                        f"{week_of}: received {minutes(received)} of {kind}"))
                down += h
        if (len(weeks) - 1 - i) % label_every == 0:
            chart.x_labels.append(Label(round(left + i * band + band / 2, 1), height - bottom + 16,
                                        f"{week.week_start.day} {week.week_start:%b}"))
    return chart


# -- flows ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    id: str
    name: str
    x: float
    y: float
    label: Label


@dataclass(frozen=True)
class Edge:
    path: str
    width: float
    title: str
    giver: str
    receiver: str
    minutes: int


@dataclass
class FlowGraph:
    width: int
    height: int
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    top: float = 0  # the picture is cropped to the ring's labels: viewBox "0 top width height"
    # A big circle is drawn in part (its strongest flows); these say what the picture leaves out.
    people_total: int = 0
    flows_total: int = 0
    left_out_flows: int = 0
    left_out_minutes: int = 0

    @property
    def partial(self) -> bool:
        return self.left_out_flows > 0 or len(self.nodes) < self.people_total

    @property
    def view_box(self) -> str:
        return f"0 {self.top:.0f} {self.width} {self.height}"


# Beyond these, a ring of names and its arrows tangle: a big circle shows its strongest flows only.
MAX_RING_PEOPLE = 16
MAX_RING_FLOWS = 30


def strongest_flows(flows: Sequence[Flow], *, max_people: int = MAX_RING_PEOPLE,
                    max_flows: int = MAX_RING_FLOWS) -> list[Flow]:
    """The largest flows, taken largest first while they keep to `max_people` people and `max_flows` arrows."""
    chosen: list[Flow] = []
    people: set[str] = set()
    for f in sorted(flows, key=lambda f: (-f.minutes, f.giver, f.receiver)):
        new = {f.giver, f.receiver} - people
        if len(people) + len(new) > max_people:
            continue
        chosen.append(f)
        people |= new
        if len(chosen) >= max_flows:
            break
    return chosen


def flow_graph(flows: Sequence[Flow], names: Mapping[str, str], *, size: int = 560,
               max_people: int = MAX_RING_PEOPLE, max_flows: int = MAX_RING_FLOWS) -> FlowGraph:
    """Members on a ring (sorted by name, so the picture is stable), one curved arrow per flow.

    A small circle shows every member, also those without a flow. A bigger one (more than `max_people`
    people or `max_flows` flows) shows only its strongest flows and the people they join, and says how
    much it leaves out; the table beside the picture lists every flow.
    """
    # Labels need room on both sides, so the picture is wider than the ring.
    graph = FlowGraph(width=size + 240, height=size)
    flows = [f for f in flows if f.giver != f.receiver]
    everyone = {f.giver for f in flows} | {f.receiver for f in flows} | set(names)
    graph.people_total, graph.flows_total = len(everyone), len(flows)
    if len(everyone) > max_people or len(flows) > max_flows:
        shown = strongest_flows(flows, max_people=max_people, max_flows=max_flows)
        graph.left_out_flows = len(flows) - len(shown)
        graph.left_out_minutes = sum(f.minutes for f in flows) - sum(f.minutes for f in shown)
        flows = shown
        on_ring = {f.giver for f in flows} | {f.receiver for f in flows}
    else:
        on_ring = everyone
    where = _place_on_ring(graph, on_ring, names, size)
    if not where:
        return graph
    biggest = max((f.minutes for f in flows), default=1) or 1
    node_r = 7
    for f in sorted(flows, key=lambda f: f.minutes):  # thin arrows under thick ones
        if f.giver not in where or f.receiver not in where or f.giver == f.receiver:
            continue
        (x1, y1), (x2, y2) = where[f.giver], where[f.receiver]
        dx, dy = x2 - x1, y2 - y1
        dist = math.hypot(dx, dy) or 1
        ux, uy = dx / dist, dy / dist
        # Start and end on the node's rim, not its centre, so the arrow head stays visible.
        sx, sy = x1 + ux * node_r, y1 + uy * node_r
        ex, ey = x2 - ux * (node_r + 3), y2 - uy * (node_r + 3)
        # Bend to the right of the direction of travel: the reverse flow bends the other way.
        bend = min(60.0, dist * 0.18)
        mx, my = (sx + ex) / 2 - uy * bend, (sy + ey) / 2 + ux * bend
        width = 1.5 + 8.5 * math.sqrt(f.minutes / biggest)
        graph.edges.append(Edge(
            path=f"M{sx:.1f},{sy:.1f} Q{mx:.1f},{my:.1f} {ex:.1f},{ey:.1f}",
            width=round(width, 1),
            title=f"{names.get(f.giver, f.giver)} gave {names.get(f.receiver, f.receiver)} {minutes(f.minutes)}",
            giver=f.giver, receiver=f.receiver, minutes=f.minutes,
        ))
    _crop(graph, size)
    return graph


def _place_on_ring(graph: FlowGraph, people_ids: set[str], names: Mapping[str, str],
                   size: int) -> dict[str, tuple[float, float]]:
    """Put people on a ring sorted by name (a stable picture, never an order of amounts); their positions."""
    people = sorted(people_ids, key=lambda m: (names.get(m, m).lower(), m))
    cx, cy = graph.width / 2, size / 2
    radius = size / 2 - 40
    where: dict[str, tuple[float, float]] = {}
    for i, person in enumerate(people):
        angle = -math.pi / 2 + 2 * math.pi * i / len(people)
        x, y = cx + radius * math.cos(angle), cy + radius * math.sin(angle)
        where[person] = (x, y)
        lx, ly = cx + (radius + 14) * math.cos(angle), cy + (radius + 14) * math.sin(angle)
        anchor = "middle" if abs(math.cos(angle)) < 0.2 else ("start" if math.cos(angle) > 0 else "end")
        ly += 14 if math.sin(angle) > 0.8 else (-6 if math.sin(angle) < -0.8 else 4)
        graph.nodes.append(Node(person, names.get(person, person), round(x, 1), round(y, 1),
                                Label(round(lx, 1), round(ly, 1), names.get(person, person), anchor)))
    return where


def _crop(graph: FlowGraph, size: int) -> None:
    """With an odd number of people the ring leaves a band of empty space below: crop to what is drawn."""
    if not graph.nodes:
        return
    top = min(n.label.y for n in graph.nodes) - 24
    bottom = max(max(n.y, n.label.y) for n in graph.nodes) + 24
    graph.top, graph.height = round(max(0.0, top), 1), round(min(float(size), bottom) - max(0.0, top))


# Two people who exchanged in the window, either way; no direction, no amount. Plain pairs, as balance
# sends them: a big circle has a thousand, and the page should not build an object for each.
Tie = tuple[str, str]


def linked_people(ties: Iterable[Tie]) -> dict[str, set[str]]:
    """Each person who exchanged, with the people they exchanged with (giving to oneself is no tie)."""
    linked: dict[str, set[str]] = {}
    for a, b in ties:
        if a != b:
            linked.setdefault(a, set()).add(b)
            linked.setdefault(b, set()).add(a)
    return linked


def connection_graph(ties: Sequence[Tie], names: Mapping[str, str]) -> FlowGraph:
    """Who is connected with whom, for a small circle's members: every person on a ring (sorted by name) and
    one plain line per pair that exchanged, either way. Every line is as thick as the next, with no arrow
    and no minutes, so nobody can read from it how much one person gave another (that is for the two of
    them and their leads). The ring grows with the number of people so that names keep apart; the picture
    scales to the screen's width. A bigger circle is drawn as a grid instead (tie_matrix)."""
    ties = [(a, b) for a, b in ties if a != b]
    everyone = {p for tie in ties for p in tie} | set(names)
    size = max(560, 18 * len(everyone))
    graph = FlowGraph(width=size + 240, height=size)
    graph.people_total, graph.flows_total = len(everyone), len(ties)
    where = _place_on_ring(graph, everyone, names, size)
    node_r = 7
    for one, other in ties:
        (x1, y1), (x2, y2) = where[one], where[other]
        dx, dy = x2 - x1, y2 - y1
        dist = math.hypot(dx, dy) or 1
        ux, uy = dx / dist, dy / dist
        sx, sy, ex, ey = x1 + ux * node_r, y1 + uy * node_r, x2 - ux * node_r, y2 - uy * node_r
        a, b = names.get(one, one), names.get(other, other)
        graph.edges.append(Edge(path=f"M{sx:.1f},{sy:.1f} L{ex:.1f},{ey:.1f}", width=1.5,
                                title=f"{a} and {b} exchanged", giver=one, receiver=other, minutes=0))
    _crop(graph, size)
    return graph


# -- who is connected with whom, as a grid --------------------------------------------------------------


@dataclass(frozen=True)
class MatrixRow:
    id: str
    name: str
    label: Label
    cells: str  # one path: a square at each column whose person exchanged with this row's
    ties: int


@dataclass
class TieMatrix:
    """Every person of the circle on a row and on a column, both sorted by name, and a mark where two people
    exchanged (either way, any amount: all marks alike). A ring of lines tangles beyond a dozen people and
    grows with the number of pairs; the grid reads the same with three pairs or with every pair, and it is
    drawn with a few elements per person, so it costs the same whatever the history holds."""

    width: float
    height: float
    cell: int
    rows: list[MatrixRow] = field(default_factory=list)
    columns: list[Label] = field(default_factory=list)
    grid: str = ""
    diagonal: str = ""  # each person's own square, shaded
    # Every other row is shaded, to keep the eye on its line.
    bands: str = ""
    people_total: int = 0
    ties_total: int = 0

    @property
    def view_box(self) -> str:
        return f"0 0 {self.width:.0f} {self.height:.0f}"


# A 13 px sans-serif name is at most about this wide per character; names are cut beyond MATRIX_NAME_CHARS.
_CHAR_PX = 8.2
MATRIX_NAME_CHARS = 24


def _short(name: str) -> str:
    return name if len(name) <= MATRIX_NAME_CHARS else name[:MATRIX_NAME_CHARS - 1] + "…"


def tie_matrix(linked: Mapping[str, set[str]], names: Mapping[str, str], *, cell: int = 18) -> TieMatrix:
    """The grid of who exchanged with whom (`linked`: each person with the others, as balance's `linked`
    picture or linked_people of pairs), with a row for each of `names` (the
    circle's members) and for anyone else in `linked`, by name."""
    people = sorted(set(names) | set(linked), key=lambda m: (names.get(m, m).lower(), m))
    shown = {m: _short(names.get(m, m)) for m in people}
    longest = max((len(n) for n in shown.values()), default=4) * _CHAR_PX
    left = round(longest * 1.1 + 16)  # room for the viewer's own name, in bold
    # Column names stand at 60 degrees above the grid (steep enough that neighbours keep apart at 18 px):
    # they rise by sin 60 of their length and lean to the right by cos 60 of it.
    top = round(longest * 0.87 + 16)
    n = len(people)
    grid_w = n * cell
    matrix = TieMatrix(width=round(left + grid_w + longest * 0.5 + 12), height=top + grid_w + 4, cell=cell,
                       people_total=n, ties_total=sum(len(v) for v in linked.values()) // 2)
    column = {m: i for i, m in enumerate(people)}
    pad = cell // 5
    mark = f"h{cell - 2 * pad}v{cell - 2 * pad}h-{cell - 2 * pad}z"  # a square, drawn from its corner
    # A move of so many columns and a mark, written once for every distance: a saturated circle has a
    # mark for nearly every pair, and formatting each one cost more than the rest of the page.
    step = [f"m{d * cell},0{mark}" for d in range(n)]
    for i, person in enumerate(people):
        y = top + i * cell
        # One path per row: a move to the row's first mark, then from each mark's corner to the next one's.
        at = 0
        cells = []
        for j in sorted([column[o] for o in linked.get(person, ())]):
            cells.append(step[j - at])
            at = j
        matrix.rows.append(MatrixRow(person, names.get(person, person),
                                     Label(left - 8, round(y + cell * 0.7, 1), shown[person], "end"),
                                     f"M{left + pad},{y + pad}" + "".join(cells) if cells else "", len(cells)))
        x = left + i * cell + cell * 0.7
        matrix.columns.append(Label(round(x, 1), top - 6, shown[person], "start"))
    lines = [f"M{left + j * cell},{top}v{grid_w}" for j in range(n + 1)]
    lines += [f"M{left},{top + i * cell}h{grid_w}" for i in range(n + 1)]
    matrix.grid = "".join(lines)
    matrix.diagonal = "".join(f"M{left + i * cell},{top + i * cell}h{cell}v{cell}h-{cell}z" for i in range(n))
    span = left + grid_w  # under the names and the grid, not beyond
    matrix.bands = "".join(f"M0,{top + i * cell}h{span}v{cell}h-{span}z" for i in range(1, n, 2))
    return matrix
