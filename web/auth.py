"""Signing in and out, and who is signed in.

A member signs in with their directory id and the password kept in web_accounts. The session cookie
(Flask's signed cookie: HttpOnly, SameSite=Lax, Secure outside local) holds only the member id; the
member's name, circles and role are read from the directory on every request, so a change there
(new lead, operator role removed) takes effect at once.

Expiry: the cookie (and its signature's age) lasts PERMANENT_SESSION_LIFETIME (14 days) from when it was
last written. Flask does not re-send it on every answer (SESSION_REFRESH_EACH_REQUEST is off): an answer
to a request that changed nothing would carry the session *as that request saw it*, and arriving after a
newer answer (a member search sent just before the form it belongs to was answered) it would overwrite
newer state, such as the "Recorded." message. Instead `renew_session` slides the expiry at most once a day,
on a page the member opens (a GET that is not an htmx request), so a member who keeps using the site stays
signed in and one who leaves it for 14 days is signed out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict, deque
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, flash, g, redirect, session, url_for
from htmx_flask import request

from .accounts import AccountStore
from .clients import NotFound
from .ui import clients, render_page

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

# How old the session cookie may get before opening a page writes it again (sliding the 14 days on).
RENEW_AFTER_S = 24 * 3600

# Endpoints anyone may reach without signing in.
PUBLIC_ENDPOINTS = {"auth.signin", "static", "health", "metrics"}


class LoginThrottle:
    """At most `attempts` failed sign-ins per key (see `throttle_keys`) per `window_s` seconds.

    In memory: per process, forgotten on restart. Enough to make guessing slow; a shared store would be
    needed for several web processes behind a load balancer.
    """

    def __init__(self, attempts: int, window_s: int) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures[key]
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        return failures

    def blocked(self, *keys: str) -> bool:
        now = time.monotonic()
        with self._lock:
            return any(len(self._recent(k, now)) >= self.attempts for k in keys)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for k in keys:
                self._recent(k, now).append(now)

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for k in keys:
                self._failures.pop(k, None)


def throttle_keys(member_id: str, address: str | None) -> tuple[str, str]:
    """What failed sign-ins are counted against: the client address, and the member id *from that address*.

    Never the member id alone: then anyone anywhere could lock a member out by failing on purpose. The
    pair still slows guessing one member's password from one place; the address key slows guessing many.
    """
    return f"ip:{address}", f"member:{member_id}@{address}"


def _safe_next(target: str | None) -> str:
    """Only same-site paths: never redirect a fresh session to somebody else's site."""
    if not target:
        return url_for("me.dashboard")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("me.dashboard")
    return target


@bp.route("/signin", methods=["GET", "POST"])
def signin() -> Response:
    if request.method == "GET":
        if session.get("member_id"):
            return redirect(_safe_next(request.args.get("next")))  # type: ignore[return-value]
        return render_page("signin.html", next=request.args.get("next", ""), member_id="")

    member_id = (request.form.get("member_id") or "").strip().lower()
    password = request.form.get("password") or ""
    next_url = request.form.get("next") or ""
    throttle: LoginThrottle = current_app.extensions["reciprocity.throttle"]
    # The TCP peer's address: the app applies no ProxyFix, so behind a reverse proxy this would be the proxy's.
    address_key, pair_key = throttle_keys(member_id, request.remote_addr)

    def refuse(message: str, status: int) -> Response:
        return render_page("signin.html", code=status, error=message, member_id=member_id, next=next_url)

    if throttle.blocked(address_key, pair_key):
        return refuse("Too many attempts in a short time. Please wait a few minutes and try again.", 429)
    accounts: AccountStore = current_app.extensions["reciprocity.accounts"]
    if not member_id or not accounts.verify(member_id, password):
        throttle.failed(address_key, pair_key)
        return refuse("That member id and password do not match. Check both and try again.", 401)
    try:
        clients().balance.member(member_id)
    except NotFound:
        # A password without a member (not registered yet, or the directory is still catching up).
        throttle.failed(address_key, pair_key)
        return refuse("That member id and password do not match. Check both and try again.", 401)
    # Only the pair is forgiven: signing in to one's own account must not reset the address's count
    # of failures on other members' passwords.
    throttle.succeeded(pair_key)
    session.clear()  # a fresh session on sign-in: nothing from before carries over
    session.permanent = True
    session["member_id"] = member_id
    session["stamp"] = accounts.session_stamp(member_id)
    session["renewed"] = int(time.time())
    log.info("signed in: %s", member_id)
    return redirect(_safe_next(next_url))  # type: ignore[return-value]


@bp.post("/signout")
def signout() -> Response:
    session.clear()
    flash("You are signed out. See you soon.", "info")
    return redirect(url_for("auth.signin"))  # type: ignore[return-value]


def load_signed_in_member() -> Response | None:
    """before_request: pages other than the public ones need a member; load them from the directory."""
    g.me = None
    if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
        return None
    member_id = session.get("member_id")
    if not member_id:
        return _to_signin()
    accounts: AccountStore = current_app.extensions["reciprocity.accounts"]
    if session.get("stamp") != accounts.session_stamp(member_id):
        session.clear()
        flash("Your password was changed since you signed in, so please sign in again.", "info")
        return _to_signin()
    try:
        g.me = clients().balance.member(member_id)
    except NotFound:
        session.clear()
        flash("Your member record could not be found, so you were signed out.", "info")
        return _to_signin()
    renew_session()
    return None


def renew_session() -> None:
    """Slide the session's expiry on, at most once a day, and only on a page the member opens.

    Writing the cookie means sending the whole session as this request saw it. A page the member opens
    is the newest thing in the tab; a background htmx request (a poll, the member search) is not, and its
    answer may arrive after a newer one that changed the session, so it never writes the cookie.
    """
    if request.method != "GET" or request.htmx:
        return
    now = int(time.time())
    try:
        renewed = int(session.get("renewed", 0))
    except (TypeError, ValueError):
        renewed = 0
    if now - renewed >= RENEW_AFTER_S:
        session["renewed"] = now


def _to_signin() -> Response:
    target = url_for("auth.signin", next=request.full_path.rstrip("?") if request.method == "GET" else None)
    if request.htmx:
        # A poll or form from a page whose session ended: take the whole page to sign-in.
        response = Response(status=200)
        response.headers["HX-Redirect"] = url_for("auth.signin")
        return response
    return redirect(target)  # type: ignore[return-value]
