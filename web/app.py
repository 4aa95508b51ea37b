"""The web front end: Flask + htmx, reading balance and sending commands to the ledger.

`create_app(settings, clients=None)` builds the app (tests pass fake clients); `main()` serves it:
`python -m reciprocity.web.app` (PORT, default 8000).
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import timedelta
from typing import Any

from flask import Flask, Response, g, render_template, session
from flask_wtf.csrf import CSRFError, CSRFProtect
from htmx_flask import Htmx, request
from prometheus_client import Counter, Histogram
from reciprocity.common.service import add_metrics_route, health_response, serve_api
from reciprocity.common.service_client import NotFound, Unavailable
from werkzeug.exceptions import HTTPException

from . import auth, items, pages_circles, pages_exchanges, pages_me, pages_ops
from .accounts import AccountStore
from .clients import Clients, http_clients
from .directory import DirectoryCache
from .format import FILTERS, recent_days
from .proxies import TrustedProxies, parse_networks
from .sessions import SessionStore
from .settings import WebSettings
from .throttle import LoginThrottle
from .ui import site_links

log = logging.getLogger(__name__)

REQUESTS = Counter("web_requests_total", "HTTP requests answered by the web", ["endpoint", "status"])
LATENCY = Histogram("web_request_seconds", "Time to answer a web request", ["endpoint"])
UPSTREAM_FAILURES = Counter("web_upstream_unavailable_total", "Pages that could not reach a service", ["service"])

# htmx swaps 2xx by default only. Field errors (422) and "try again" notices (503 etc.) are meant to be
# seen, so swap every answer but 204; no eval (the CSP forbids it) and no injected indicator styles.
HTMX_CONFIG = (
    '{"responseHandling":[{"code":"204","swap":false},{"code":"...","swap":true}],'
    '"allowEval":false,"includeIndicatorStyles":false,"selfRequestsOnly":true}'
)

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'; object-src 'none'")

SERVICE_WORDS = {
    "ledger": "the ledger, where exchanges are saved",
    "balance": "the balance service, which keeps everyone's numbers",
    "notify": "the notification service",
}


def create_app(settings: WebSettings | None = None, clients: Clients | None = None) -> Flask:
    settings = settings or WebSettings()
    settings.check()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME="reciprocity_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        # Sessions last 14 days from when the cookie was last written. The cookie is written only when a
        # request changes the session (sign-in, a flash message, ...) or, at most once a day, when a page
        # is opened (auth.renew_session): never by a background (htmx) request that changed nothing. Such
        # a response, finishing after a newer one, would otherwise put the older session back in the
        # browser (a "Recorded." message lost to a member search sent just before the form answered).
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=settings.web_session_idle_s),
        SESSION_REFRESH_EACH_REQUEST=False,
        # A form left open over lunch should still submit; the token is bound to the session anyway.
        WTF_CSRF_TIME_LIMIT=12 * 3600,
        WTF_CSRF_SSL_STRICT=settings.is_https,
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    app.extensions["reciprocity.settings"] = settings
    app.extensions["reciprocity.clients"] = clients or http_clients(
        ledger_url=settings.ledger_url, ledger_token=settings.ledger_token, balance_url=settings.balance_url,
        balance_token=settings.balance_token, notify_url=settings.notify_url, notify_token=settings.notify_token,
        timeout_s=settings.web_upstream_timeout_s,
    )
    app.extensions["reciprocity.directory"] = DirectoryCache(app.extensions["reciprocity.clients"].balance,
                                                             ttl_s=settings.web_directory_cache_s)
    accounts = app.extensions["reciprocity.accounts"] = AccountStore(settings.database_url)
    app.extensions["reciprocity.sessions"] = SessionStore(accounts.engine, idle_s=settings.web_session_idle_s,
                                                          max_s=settings.web_session_max_s)
    app.extensions["reciprocity.throttle"] = LoginThrottle(
        accounts.engine, free_failures=settings.web_login_free_failures,
        max_delay_s=settings.web_login_max_delay_s, address_attempts=settings.web_login_attempts,
        window_s=settings.web_login_window_s)
    # request.remote_addr is the client's address even behind trusted reverse proxies.
    app.wsgi_app = TrustedProxies(app.wsgi_app, parse_networks(settings.web_trusted_proxies))  # type: ignore[method-assign]
    Htmx(app)
    CSRFProtect(app)
    app.jinja_env.filters.update(FILTERS)
    app.jinja_env.globals["recent_days"] = recent_days  # the quick choices of a "when" field
    app.jinja_env.globals["htmx_config"] = HTMX_CONFIG
    app.jinja_env.globals.update(items.GLOBALS)  # exchange_items, exchange_url, ... (web/items.py)

    for blueprint in (auth.bp, pages_me.bp, pages_exchanges.bp, pages_circles.bp, pages_ops.bp):
        app.register_blueprint(blueprint)
    app.before_request(_start_timer)
    app.before_request(auth.load_signed_in_member)
    app.after_request(_finish)
    _add_error_pages(app)
    _add_health(app)
    add_metrics_route(app)

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {"current": g.get("me"), "endpoint": request.endpoint or "", "site": site_links()}

    return app


def _start_timer() -> None:
    g.started = time.perf_counter()


def _finish(response: Response) -> Response:
    endpoint = request.endpoint or "unknown"
    REQUESTS.labels(endpoint, str(response.status_code)).inc()
    if "started" in g:
        LATENCY.labels(endpoint).observe(time.perf_counter() - g.started)
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    if response.mimetype == "text/html":
        headers.setdefault("Content-Security-Policy", CSP)
        if session.get("member_id"):
            # Personal pages: not for shared caches, not for the back button after signing out.
            headers["Cache-Control"] = "private, no-store"
    return response


def _error(status: int, title: str, message: str, *, retry_after: int | None = None) -> Response:
    template = "partials/_notice.html" if request.htmx else "error.html"
    response = Response(render_template(template, title=title, message=message, status=status), status,
                        mimetype="text/html")
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _add_error_pages(app: Flask) -> None:
    @app.errorhandler(Unavailable)
    def unavailable(err: Unavailable) -> Response:
        UPSTREAM_FAILURES.labels(err.service).inc()
        log.warning("page %s could not reach %s: %s", request.path, err.service, err.message)
        who = SERVICE_WORDS.get(err.service, err.service)
        return _error(503, "Please try again in a moment",
                      f"We could not reach {who}. Nothing you did was lost or changed; "
                      "reload the page in a moment.", retry_after=err.retry_after or 5)

    @app.errorhandler(NotFound)
    def upstream_not_found(err: NotFound) -> Response:
        return _error(404, "Not found", "We could not find that. It may have been mistyped, or not exist yet.")

    @app.errorhandler(CSRFError)
    def csrf_error(err: CSRFError) -> Response:
        return _error(400, "This form has expired",
                      "For your safety, forms are only accepted from pages we recently showed you. "
                      "Nothing was saved: go back, reload the page and send it again.")

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException) -> Response:
        status = err.code or 500
        if status == 403:
            message = g.get("forbidden_message") or "This page is not available to you."
            return _error(403, "This page is private", message)
        if status == 404:
            return _error(404, "Not found", "There is nothing at this address. The links above lead somewhere.")
        if status == 405:
            return _error(405, "Not like that", "This address does not take that kind of request.")
        if status == 413:
            return _error(413, "Too much", "That was more text than a form here accepts.")
        return _error(status, err.name, err.description or "Something went wrong.")

    @app.errorhandler(Exception)
    def crash(err: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return _error(500, "Something went wrong on our side",
                      "This was not your doing, and it has been logged. Please try again; if it keeps "
                      "happening, tell whoever runs Reciprocity for your organisation.")


def _add_health(app: Flask) -> None:
    @app.get("/health")
    def health() -> tuple[Response, int]:
        # Public (a load balancer reads it): it says what is unavailable, never where the internal
        # services live or why; the reason goes to the log and to the operator page.
        c: Clients = app.extensions["reciprocity.clients"]
        accounts: AccountStore = app.extensions["reciprocity.accounts"]
        checks = {"ledger": c.ledger.health(), "balance": c.balance.health(), "database": accounts.ping()}
        for name, why in checks.items():
            if why:
                log.warning("health: %s is unavailable: %s", name, why)
        return health_response({name: why and "unavailable" for name, why in checks.items()})


def main() -> None:
    from .bootstrap import bootstrap

    settings = WebSettings()
    settings.check()  # here, in gunicorn's master: one clear line, no worker boots
    serve_api(bootstrap(settings), settings)


if __name__ == "__main__":
    # Run as `python -m reciprocity.web.app`, this module is `__main__`; bootstrap imports it by its name, and a
    # second copy would register its metrics twice.
    sys.modules.setdefault("reciprocity.web.app", sys.modules[__name__])
    main()
