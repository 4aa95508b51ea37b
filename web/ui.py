"""Helpers every page uses: the clients, the signed-in member, page-or-partial rendering, windows."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, current_app, g, make_response, render_template, url_for
from htmx_flask import request

from .clients import Clients
from .clients.balance import Member
from .directory import DirectoryCache

WINDOWS = ("7d", "28d", "90d", "365d")
WINDOW_LABELS = {"7d": "7 days", "28d": "4 weeks", "90d": "3 months", "365d": "a year"}


def clients() -> Clients:
    return current_app.extensions["reciprocity.clients"]


def directory() -> DirectoryCache:
    """The directory's answers as this process remembers them for a moment (web/directory.py)."""
    return current_app.extensions["reciprocity.directory"]


def me() -> Member:
    """The signed-in member (loaded from the directory before every signed-in request)."""
    return g.me


# The links of every page's header and head (base.html): the same for every request under the same
# script root, so built through the URL map once per root rather than eleven times a page.
SITE_ENDPOINTS = ("me.dashboard", "exchanges.new_exchange", "me.people", "circles.circles", "circles.wall",
                  "me.capacity", "ops.ops", "auth.signout", "auth.account")
STATIC_FILES = ("favicon.svg", "site.css", "htmx.min.js")


def site_links() -> dict[str, str]:
    """endpoint (or static file name) -> its URL, for base.html."""
    built: dict[str, dict[str, str]] = current_app.extensions.setdefault("reciprocity.site_links", {})
    root = request.script_root
    links = built.get(root)
    if links is None:
        links = {**{e: url_for(e) for e in SITE_ENDPOINTS}, **{f: url_for("static", filename=f) for f in STATIC_FILES}}
        if len(built) < 16:  # a handful of roots at most (behind a proxy or not); never grow without bound
            built[root] = links
    return links


def render_page(page: str, partial: str | None = None, *, code: int = 200, **context: Any) -> Response:
    """The whole page, or for an htmx request only the partial the page includes.

    One URL then serves two representations, so caches must key on HX-Request (Vary).
    """
    template = partial if partial and request.htmx else page
    response = make_response(render_template(template, **context), code)
    if partial:
        response.vary.add("HX-Request")
    return response


def window_arg(default: str = "28d") -> str:
    value = request.args.get("window", default)
    return value if value in WINDOWS else default


def forbid(message: str) -> None:
    """403 with a kind explanation (the error page shows `message`)."""
    g.forbidden_message = message
    abort(403)
