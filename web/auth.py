"""Signing in and out, who is signed in, and a member's own password.

A member signs in with their directory id and the password kept in web_accounts. The session cookie
(Flask's signed cookie: HttpOnly, SameSite=Lax, Secure outside local) holds the member id and a random
session token whose row in web_sessions (web/sessions.py) is what makes the session live: signing out
deletes it, so a cookie saved before is signed out too; so does any password change, and "sign out
everywhere", for every session of the member. A session has an idle lifetime and an absolute one
(WEB_SESSION_IDLE_S, WEB_SESSION_MAX_S). The session is checked in the database on every request. The
member's name, circles and role come from the directory: on a page she opens, as this process read it at
most WEB_DIRECTORY_CACHE_S ago (web/directory.py); on every command and on the pages about her own entry
or operations, read afresh, so a change there (operator role removed) holds for whatever she does next.

The cookie itself lasts PERMANENT_SESSION_LIFETIME from when it was last written. Flask does not
re-send it on every answer (SESSION_REFRESH_EACH_REQUEST is off): an answer to a request that changed
nothing would carry the session *as that request saw it*, and arriving after a newer answer (a member
search sent just before the form it belongs to was answered) it would overwrite newer state, such as the
"Recorded." message. Instead `renew_session` slides the cookie's expiry at most once a day, on a page the
member opens (a GET that is not an htmx request).

Failed sign-ins are slowed per account and per client address (web/throttle.py).
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, flash, g, redirect, session, url_for
from htmx_flask import request
from reciprocity.common.service_client import NotFound

from .accounts import AccountStore, check_password_rules
from .sessions import SessionStore
from .throttle import LoginThrottle
from .ui import clients, directory, me, render_page

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

# How old the session cookie may get before opening a page writes it again (sliding the 14 days on).
RENEW_AFTER_S = 24 * 3600

# Pages that show or act on the member's own directory entry, or on operations: they read the member
# afresh, not as this process remembered her a moment ago (web/directory.py). So does every command.
FRESH_MEMBER_ENDPOINTS = {"me.capacity", "ops.ops", "ops.dead_letters", "auth.account"}

# Endpoints anyone may reach without signing in.
PUBLIC_ENDPOINTS = {"auth.signin", "static", "health", "metrics"}

NO_MATCH = "That member id and password do not match. Check both and try again."


def _accounts() -> AccountStore:
    return current_app.extensions["reciprocity.accounts"]


def _sessions() -> SessionStore:
    return current_app.extensions["reciprocity.sessions"]


def _throttle() -> LoginThrottle:
    return current_app.extensions["reciprocity.throttle"]


def _too_many(wait_s: int, per_account: bool) -> str:
    wait = f"{round(wait_s / 60)} minutes" if wait_s >= 120 else f"{wait_s} second{'' if wait_s == 1 else 's'}"
    if per_account:
        return (f"Too many failed attempts for this member id. Please wait {wait} and try again; "
                "each further wrong password makes the wait longer.")
    return f"Too many failed attempts from your network. Please wait {wait} and try again."


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
        signed_in = session.get("member_id")
        if signed_in and _sessions().member_of(session.get("sid")) == signed_in:
            return redirect(_safe_next(request.args.get("next")))  # type: ignore[return-value]
        return render_page("signin.html", next=request.args.get("next", ""), member_id="")

    member_id = (request.form.get("member_id") or "").strip().lower()
    password = request.form.get("password") or ""
    next_url = request.form.get("next") or ""
    throttle = _throttle()
    # The TCP peer, or the client a trusted proxy forwarded for (web/proxies.py).
    address = request.remote_addr

    def refuse(message: str, status: int) -> Response:
        return render_page("signin.html", code=status, error=message, member_id=member_id, next=next_url)

    refusal = throttle.refused(member_id, address)
    if refusal is not None:
        return refuse(_too_many(refusal.wait_s, refusal.per_account), 429)
    if not member_id or not _accounts().verify(member_id, password):
        throttle.failed(member_id, address)
        return refuse(NO_MATCH, 401)
    try:
        if clients().balance.member(member_id).former:  # forgotten: the account should be gone already
            raise NotFound("balance", "a former member")
    except NotFound:
        # A password without a member (not registered yet, or the directory is still catching up).
        throttle.failed(member_id, address)
        return refuse(NO_MATCH, 401)
    throttle.succeeded(member_id)
    _begin_session(member_id)
    log.info("signed in: %s", member_id)
    return redirect(_safe_next(next_url))  # type: ignore[return-value]


def _begin_session(member_id: str) -> None:
    session.clear()  # a fresh session on sign-in: nothing from before carries over
    session.permanent = True
    session["member_id"] = member_id
    session["sid"] = _sessions().begin(member_id)
    session["renewed"] = int(time.time())


@bp.post("/signout")
def signout() -> Response:
    _sessions().end(session.get("sid"))
    session.clear()
    flash("You are signed out. See you soon.", "info")
    return redirect(url_for("auth.signin"))  # type: ignore[return-value]


@bp.post("/signout/everywhere")
def signout_everywhere() -> Response:
    ended = _sessions().end_all(me().id)
    log.info("signed out everywhere: %s (%d sessions)", me().id, ended)
    session.clear()
    flash("You are signed out everywhere: on this device and every other one.", "info")
    return redirect(url_for("auth.signin"))  # type: ignore[return-value]


@bp.route("/account", methods=["GET", "POST"])
def account() -> Response:
    """The member's own password (the current one required) and her sessions."""
    member_id = me().id

    def page(status: int = 200, **context: Any) -> Response:
        return render_page("account.html", code=status, sessions=_sessions().count(member_id), **context)

    if request.method == "GET":
        return page()
    current = request.form.get("current_password") or ""
    new = request.form.get("new_password") or ""
    repeated = request.form.get("repeat_password") or ""
    throttle = _throttle()
    refusal = throttle.refused(member_id, request.remote_addr)
    if refusal is not None:
        return page(429, current_error=_too_many(refusal.wait_s, refusal.per_account))
    if not _accounts().verify(member_id, current):
        # Counted like a failed sign-in: a borrowed session must not become a way to guess the password.
        throttle.failed(member_id, request.remote_addr)
        return page(422, current_error="That is not your current password.")
    try:
        check_password_rules(new)
    except ValueError as err:
        return page(422, new_error=f"Please choose another: {err}.")
    if new != repeated:
        return page(422, repeat_error="The two new passwords differ.")
    if new == current:
        return page(422, new_error="That is your current password; choose a new one.")
    throttle.succeeded(member_id)
    _accounts().set_password(member_id, new)  # ends every session of hers, this one included
    _begin_session(member_id)  # ... so this browser gets a fresh one
    log.info("password changed by the member: %s", member_id)
    flash("Your password is changed. Every other session of yours is signed out.", "info")
    return redirect(url_for("auth.account"))  # type: ignore[return-value]


def load_signed_in_member() -> Response | None:
    """before_request: pages other than the public ones need a live session; load its member from the
    directory."""
    g.me = None
    if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
        return None
    member_id = session.get("member_id")
    if not member_id:
        return _to_signin()
    if _sessions().member_of(session.get("sid")) != member_id:
        # Signed out (here or everywhere), password changed, expired, no account, or a cookie that was
        # never a session: all the same to whoever holds it.
        session.clear()
        flash("Your session has ended (you signed out, your password was changed, or it expired), "
              "so please sign in again.", "info")
        return _to_signin()
    try:
        g.me = directory().member(member_id, fresh=not _may_use_remembered())
    except NotFound:
        session.clear()
        flash("Your member record could not be found, so you were signed out.", "info")
        return _to_signin()
    renew_session()
    return None


def _may_use_remembered() -> bool:
    return request.method in ("GET", "HEAD") and request.endpoint not in FRESH_MEMBER_ENDPOINTS


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
