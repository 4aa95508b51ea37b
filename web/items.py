"""The HTML the pages repeat many times, written in Python and used by the templates as globals: an
exchange where pages list them (history, the dashboard's inbox), its title and status badge (also on the
exchange's own page), a kind's dot and name, and the cells of the people table.

A history page lists fifty exchanges, a dashboard up to a hundred and ten, the people page twenty-five
people with two flows and their kinds each; as Jinja macros (the item calling three more for its title,
badge and kind) they were about half of the CPU of rendering those pages under load. Here each value is
escaped once, as Jinja's autoescape would, and the markup is the macros' own, character for character.
partials/_macros.html keeps `kind`, `flow_cell` and `pending_words` as macros calling these, for the
templates that import them.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import request
from markupsafe import Markup, escape
from reciprocity.contracts.vocabulary import RECORDED

from .clients.balance import Exchange
from .format import day, kind_label, minutes

# What werkzeug's converters leave unquoted in a path segment (BaseConverter.to_url).
_PATH_SAFE = "!$&'()*+,/:;=@"


def exchange_url(exchange_id: str) -> str:
    """url_for("exchanges.detail", exchange_id=...) for the lists' many links (fifty on a history page),
    without building each one through the URL map."""
    return f"{request.script_root}/exchanges/{quote(exchange_id, safe=_PATH_SAFE)}"


def kind_dot(kind: str) -> Markup:
    """The kind's colour dot and its name (the `kind` macro of partials/_macros.html)."""
    return Markup(f'<span class="kind-dot kind-{escape(kind)}" aria-hidden="true"></span>{escape(kind_label(kind))}')


def status_badge(e: Exchange, me_id: str) -> Markup:
    if e.status == RECORDED:
        waiting = "waiting for you" if e.counterpart == me_id else f"waiting for {escape(e.name_of(e.counterpart))}"
        return Markup(f'<span class="badge recorded">{waiting}</span>')
    status = escape(e.status)
    return Markup(f'<span class="badge {status}">{status}</span>')


def exchange_title(e: Exchange, me_id: str) -> Markup:
    if e.giver == me_id:
        who = f"You gave {escape(e.name_of(e.receiver))}"
    elif e.receiver == me_id:
        who = f"{escape(e.name_of(e.giver))} gave you"
    else:
        who = f"{escape(e.name_of(e.giver))} gave {escape(e.name_of(e.receiver))}"
    return Markup(f"{who} {escape(minutes(e.minutes))} of {escape(e.kind)}")


def exchange_item(e: Exchange, me_id: str) -> Markup:
    """One exchange as an item of a list (`<li>`), linking to its page."""
    xid = escape(e.exchange_id)
    mine = " · recorded by you" if e.recorded_by == me_id else ""
    return Markup(
        f'\n<li id="exchange-{xid}" data-exchange="{xid}" data-status="{escape(e.status)}">\n'
        f'  <div class="line">\n'
        f'    <a class="what" href="{escape(exchange_url(e.exchange_id))}">{exchange_title(e, me_id)}</a>\n'
        f'  </div>\n'
        f'  <div class="meta">{status_badge(e, me_id)} {kind_dot(e.kind)} · {escape(day(e.occurred_on))}{mine}</div>\n'
        f'</li>\n'
    )


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


GLOBALS = {
    "exchange_url": exchange_url,
    "kind_dot": kind_dot,
    "status_badge": status_badge,
    "exchange_title": exchange_title,
    "exchange_item": exchange_item,
    # Not "flow_cell" and "pending_words": the macros of those names in partials/_macros.html call these.
    "flow_cell_html": flow_cell,
    "pending_words_html": pending_words,
}
