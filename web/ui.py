"""Helpers every page uses: the clients, the signed-in member, page-or-partial rendering, windows."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, current_app, g, make_response, render_template
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
