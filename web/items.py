"""The HTML the pages repeat many times, written in Python and used by the templates as globals: an
exchange where pages list them (`exchange_items`: history, the dashboard's inbox), its title and status
badge (also on the exchange's own page), a kind's dot and name, the cells of the people table, and the
dashboard's chart.

A history page lists fifty exchanges, a dashboard twenty, the people page twenty-five
people with two flows and their kinds each; as Jinja macros (the item calling three more for its title,
badge and kind) they were about half of the CPU of rendering those pages under load. Here each value is
escaped once, as Jinja's autoescape would, and the markup is the macros' own, character for character.
partials/_macros.html keeps `kind`, `flow_cell`, `pending_words` and `balance_chart` as macros calling
these, for the templates that import them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any
from urllib.parse import quote

from flask import request
from markupsafe import Markup, escape
from reciprocity.contracts.vocabulary import RECORDED

from .clients.balance import Exchange, Relationship
from .format import day, kind_label, minutes

# What werkzeug's converters leave unquoted in a path segment (BaseConverter.to_url).
_PATH_SAFE = "!$&'()*+,/:;=@"


def exchange_url(exchange_id: str) -> str:
    """url_for("exchanges.detail", exchange_id=...) for the lists' many links (fifty on a history page),
    without building each one through the URL map."""
    return _exchange_path(request.script_root, exchange_id)


def _exchange_path(root: str, exchange_id: str) -> str:
    return f"{root}/exchanges/{quote(exchange_id, safe=_PATH_SAFE)}"


class _Escaped(dict[str, str]):
    """Each distinct text as Jinja's autoescape writes it, escaped once: a list of fifty exchanges
    repeats a few names, kinds, statuses and durations (a `Markup` built per value was most of the
    cost of writing an item). Lookups of texts already seen are the dict's own."""

    def __missing__(self, text: str) -> str:
        escaped = self[text] = str(escape(text))
        return escaped


@functools.lru_cache(maxsize=256)
def _kind_dot(kind: str) -> str:
    return f'<span class="kind-dot kind-{escape(kind)}" aria-hidden="true"></span>{escape(kind_label(kind))}'


def kind_dot(kind: str) -> Markup:
    """The kind's colour dot and its name (the `kind` macro of partials/_macros.html)."""
    return Markup(_kind_dot(kind))


def _status_badge(e: Exchange, me_id: str, esc: _Escaped) -> str:
    if e.status == RECORDED:
        waiting = "waiting for you" if e.counterpart == me_id else f"waiting for {esc[e.name_of(e.counterpart)]}"
        return f'<span class="badge recorded">{waiting}</span>'
    status = esc[e.status]
    return f'<span class="badge {status}">{status}</span>'


def status_badge(e: Exchange, me_id: str) -> Markup:
    return Markup(_status_badge(e, me_id, _Escaped()))


def _exchange_title(e: Exchange, me_id: str, esc: _Escaped) -> str:
    if e.giver == me_id:
        who = f"You gave {esc[e.name_of(e.receiver)]}"
    elif e.receiver == me_id:
        who = f"{esc[e.name_of(e.giver)]} gave you"
    else:
        who = f"{esc[e.name_of(e.giver)]} gave {esc[e.name_of(e.receiver)]}"
    return f"{who} {esc[minutes(e.minutes)]} of {esc[e.kind]}"


def exchange_title(e: Exchange, me_id: str) -> Markup:
    return Markup(_exchange_title(e, me_id, _Escaped()))


def exchange_items(exchanges: Iterable[Exchange], me_id: str) -> Markup:
    """Exchanges as the items of a list (`<li>` each), each linking to its page: what a page's loop of
    items writes, in one call. What repeats from item to item (the script root, the texts escaped, the
    days in words) is worked out once a list, so an item costs little more than its own id: a history
    page lists fifty where a short history lists a few."""
    root = request.script_root
    esc = _Escaped()
    days: dict[date, str] = {}
    out = []
    for e in exchanges:
        xid = esc[e.exchange_id]
        when = days.get(e.occurred_on)
        if when is None:
            when = days[e.occurred_on] = esc[day(e.occurred_on)]
        mine = " · recorded by you" if e.recorded_by == me_id else ""
        href = esc[_exchange_path(root, e.exchange_id)]
        out.append(
            f'\n<li id="exchange-{xid}" data-exchange="{xid}" data-status="{esc[e.status]}">\n'
            f'  <div class="line">\n'
            f'    <a class="what" href="{href}">{_exchange_title(e, me_id, esc)}</a>\n'
            f'  </div>\n'
            f'  <div class="meta">{_status_badge(e, me_id, esc)} {_kind_dot(e.kind)} · {when}{mine}</div>\n'
            f'</li>\n'
        )
    return Markup("".join(out))


def flow_cell(settled: int, count: int, waiting: int) -> Markup:
    """A relationship's minutes one way: acknowledged, and beneath them what still waits for acknowledgement."""
    shown = escape(minutes(settled)) if count or not waiting else ""
    if not waiting:
        return Markup(shown)
    return Markup(f'{shown}<small class="waiting">{"+ " if count else ""}{escape(minutes(waiting))} waiting</small>')


def pending_words(v: dict[str, int]) -> Markup:
    """Minutes of a kind waiting for acknowledgement, given and received: "1 h given, 30 min received"."""
    given, received = v.get("given_minutes", 0), v.get("received_minutes", 0)
    words = [f"{escape(minutes(given))} given" if given else "", ", " if given and received else "",
             f"{escape(minutes(received))} received" if received else ""]
    return Markup("".join(words))


def kinds_cell(by_kind: dict[str, dict[str, int]], pending_by_kind: dict[str, dict[str, int]]) -> Markup:
    """The inside of a person's "By kind" cell in the people table: each kind's acknowledged minutes
    either way, then each kind's minutes still waiting for acknowledgement (kinds with none left out).
    As a Jinja loop it was the page's biggest cost (two `get`s a kind to filter, two more to show, each
    a call through Jinja's runtime: some 800 calls for a page of 25 people)."""
    out = ["\n        "]
    for k, v in by_kind.items():
        given, received = v.get("given_minutes", 0), v.get("received_minutes", 0)
        if given or received:
            out.append(f'\n        <span class="kinds">{_kind_dot(k)}: {escape(minutes(given))} / '
                       f'{escape(minutes(received))}</span><br>\n        ')
    out.append("\n        ")
    for k, v in pending_by_kind.items():
        if v.get("given_minutes", 0) or v.get("received_minutes", 0):
            out.append(f'\n        <span class="kinds waiting">{_kind_dot(k)}: {pending_words(v)}, waiting for '
                       'acknowledgement</span><br>\n        ')
    out.append("\n      ")
    return Markup("".join(out))


def people_rows(relationships: Iterable[Relationship]) -> Markup:
    """The people table's rows (partials/_people_table.html), one `<tr>` a person, as its loop wrote them:
    a page shows twenty-five people where a short history has a few, and each row was fourteen Jinja
    expressions (an attribute read, a filter or a call and an escape each)."""
    e = escape
    out = []
    for r in relationships:
        other = e(r.other)
        settled = r.settled_count
        row_class, note = ("", "") if settled else (' class="pending-only"',
                                                    '<small class="waiting-note">nothing acknowledged yet</small>')
        given = (f'data-minutes="{r.given_minutes}" data-count="{r.given_count}" '
                 f'data-pending-minutes="{r.pending_given_minutes}">'
                 f'{flow_cell(r.given_minutes, r.given_count, r.pending_given_minutes)}')
        received = (f'data-minutes="{r.received_minutes}" data-count="{r.received_count}" '
                    f'data-pending-minutes="{r.pending_received_minutes}">'
                    f'{flow_cell(r.received_minutes, r.received_count, r.pending_received_minutes)}')
        out.append(
            f'\n    <tr id="person-{other}" data-member="{other}"{row_class}>\n'
            f'      <th scope="row">{e(r.name)}{note}</th>\n'
            f'      <td data-label="You gave" class="num given" {given}</td>\n'
            f'      <td data-label="You received" class="num received" {received}</td>\n'
            f'      <td class="small" data-label="By kind">{kinds_cell(r.by_kind, r.pending_by_kind)}</td>\n'
            f'      <td data-label="Last exchange">{e(day(r.last_exchange_on))}</td>\n'
            f'    </tr>\n    '
        )
    return Markup("".join(out))


def balance_chart(chart: Any, weeks: Sequence[Any], kinds: Sequence[str], colours: Any = None,
                  title_id: str = "chart-title") -> Markup:
    """The dashboard's week-by-week chart (web/charts.py draws it) and the same numbers as a table: an
    SVG of some hundred shapes and a table of weeks by kinds, the biggest part of rendering a dashboard
    as a macro. `colours` is the macro's argument, unused (the chart's shapes carry their fill). Numbers
    (coordinates, minutes) are written as they are: escaping them changed nothing and was most of the
    escaping a busy member's chart did (some 500 values)."""
    e = escape
    out: list[str] = ["\n"]
    if chart.empty:
        out.append('\n<p class="muted">Nothing settled in these weeks yet. Once exchanges are acknowledged they '
                   'show here, week by week.</p>\n')
    else:
        tid = e(title_id)
        out.append(f'\n<div class="chart-scroll">\n<svg class="chart" viewBox="0 0 {chart.width} {chart.height}" '
                   f'role="img" aria-labelledby="{tid}-svg">\n  <title id="{tid}-svg">Minutes given (above the line) '
                   'and received (below it) per week, by kind. The table below has the same numbers.</title>\n  ')
        out.extend(f'<line class="grid-line" x1="{g.x1}" y1="{g.y1}" x2="{g.x2}" y2="{g.y2}"/>'
                   for g in chart.grid)
        out.append("\n  ")
        out.extend(f'<rect x="{r.x}" y="{r.y}" width="{r.width}" height="{r.height}" fill="{e(r.fill)}" '
                   f'rx="2"><title>{e(r.title)}</title></rect>' for r in chart.rects)
        out.append("\n  ")
        if chart.axis:
            a = chart.axis
            out.append(f'<line class="axis" x1="{a.x1}" y1="{a.y1}" x2="{a.x2}" y2="{a.y2}"/>')
        out.append("\n  ")
        out.extend(f'<text x="{t.x}" y="{t.y}" text-anchor="{e(t.anchor)}">{e(t.text)}</text>'
                   for t in chart.y_labels)
        out.append("\n  ")
        out.extend(f'<text class="week-label" x="{t.x}" y="{t.y}" text-anchor="{e(t.anchor)}">{e(t.text)}</text>'
                   for t in chart.x_labels)
        out.append("\n  ")
        out.extend(f'<text x="{t.x}" y="{t.y}" text-anchor="{e(t.anchor)}">{e(t.text)}</text>'
                   for t in (chart.given_label, chart.received_label) if t)
        out.append("\n</svg>\n</div>\n")
    out.append('\n<ul class="legend" aria-label="Kinds">\n  ')
    out.extend(f"<li>{kind_dot(k)}</li>" for k in kinds)
    out.append('\n</ul>\n<details>\n  <summary>The same numbers as a table</summary>\n  <div class="table-wrap">\n'
               '  <table>\n    <caption>Minutes per week, settled exchanges</caption>\n    <thead><tr><th scope="col">'
               'Week of</th>')
    out.extend(f'<th scope="col" class="num">{e(kind_label(k))} given</th><th scope="col" class="num">received</th>'
               for k in kinds)
    out.append("</tr></thead>\n    <tbody>\n      ")
    for w in weeks:
        cells = "".join(f'<td class="num">{w.given.get(k, 0)}</td><td class="num">{w.received.get(k, 0)}</td>'
                        for k in kinds)
        out.append(f'\n      <tr><th scope="row">{e(day(w.week_start))}</th>{cells}</tr>\n      ')
    out.append("\n    </tbody>\n  </table>\n  </div>\n</details>\n")
    return Markup("".join(out))


GLOBALS = {
    "exchange_url": exchange_url,
    "kind_dot": kind_dot,
    "status_badge": status_badge,
    "exchange_title": exchange_title,
    "exchange_items": exchange_items,
    "balance_chart_html": balance_chart,
    # Not "flow_cell": the macro of that name in partials/_macros.html calls it.
    "flow_cell_html": flow_cell,
    "people_rows_html": people_rows,
}
