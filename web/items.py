"""The HTML of an exchange where pages list them (history, the dashboard's inbox) and of its title and
status badge (the exchange's own page), written in Python and used by the templates as globals.

A history page lists fifty exchanges and a dashboard up to a hundred and ten; as Jinja macros (one for
the item calling three more for its title, badge and kind) they were about half of the CPU of rendering
those pages under load. Here each value is escaped once, as Jinja's autoescape would, and the markup is
the macros' own, character for character (tests/unit/test_web_items.py compares them).
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


GLOBALS = {
    "exchange_url": exchange_url,
    "kind_dot": kind_dot,
    "status_badge": status_badge,
    "exchange_title": exchange_title,
    "exchange_item": exchange_item,
}
