"""The ledger's HTTP service: `python -m reciprocity.ledger.app` (gunicorn, one process, HTTP_THREADS threads).

At start it makes sure the topics exist and rebuilds its write-side state from `ledger.directory` and
`ledger.exchanges` (retrying until Kafka answers); /health says 503 until then. Commands need
`Authorization: Bearer $LEDGER_TOKEN`; /health, /metrics and /openapi.json are open.

Error bodies: 422 `{"errors": [{"field", "message"}]}`; 401, 404, 409, 503 `{"error": "..."}`; 503 carries
Retry-After. No failed request appends anything.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import sys
import threading
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, jsonify, request
from prometheus_client import Counter, Gauge
from pydantic import ValidationError
from reciprocity.common.auth import OPEN_PATHS, bearer_token, require_bearer_token, token_matches
from reciprocity.common.service import add_metrics_route, health_response, serve_api
from reciprocity.contracts.bounds import MAX_BODY_DEPTH, describe, lone_surrogate, surrogate_in
from reciprocity.contracts.commands import FieldError, field_errors, field_name
from reciprocity.contracts.topics import EXCHANGES, all_topics
from reciprocity.messaging.event_log import BrokerUnavailable, EventLog
from reciprocity.messaging.topics_admin import ensure_topics
from werkzeug.exceptions import HTTPException

from . import keystore
from .api import COMMANDS, QUERIES, CommandRoute, QueryRoute, openapi_document
from .handlers import Conflict, InvalidCommand, Unknown
from .keystore import KeyStore
from .responses import circle_view, exchange_view, member_view, stats
from .service import KeyReused, Ledger, NotReady, fingerprint
from .settings import LedgerSettings
from .state import LedgerState

log = logging.getLogger(__name__)

EXTENSION = "reciprocity.ledger"
KEY_HEADER = "Idempotency-Key"
KEY_MAX = 255
KEYS_PATH = "/v1/keys"
# On the answer to a retry: this is the first answer again, and nothing was appended this time.
REPLAYED_HEADER = "Idempotent-Replayed"

# Module level: prometheus_client's registry is process-wide, and tests create many apps.
COMMANDS_TOTAL = Counter("ledger_commands_total", "Ledger commands by outcome", ["command", "outcome"])
EVENTS_APPENDED = Counter("ledger_events_appended_total", "Events the ledger appended", ["topic"])
KEYS_SERVED = Counter("ledger_keys_served_total", "Member keys handed to projections")
STATE_LOADED = Gauge("ledger_state_loaded", "1 when the write-side state is loaded and trusted")


def ledger_of(app: Flask) -> Ledger:
    return app.extensions[EXTENSION]


def _error(status: int, message: str, **headers: str) -> tuple[Response, int, dict[str, str]]:
    return jsonify(error=message), status, headers


def _invalid(errors: list[FieldError]) -> tuple[Response, int]:
    return jsonify(errors=[e.model_dump() for e in errors]), 422


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"the number {text} is out of range")
    return number


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _parse_json(raw: bytes) -> Any:
    """Standard JSON only: Python's json also reads NaN, Infinity and -Infinity, and turns 1e999 into
    infinity; none of them is a number a command can take."""
    try:
        return json.loads(raw, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:  # a body nested thousands of levels deep: refused, not a 500
        raise ValueError(f"it is nested too deeply (a body takes at most {MAX_BODY_DEPTH} levels)") from None


def _unreadable_parts(body: Any) -> list[FieldError]:
    """What no command can take, wherever it sits in the body, before anything else reads it: nesting
    deeper than any command's body, and lone surrogates (JSON can escape one, "\\ud800", but it is no
    character: it cannot be encoded as UTF-8, stored in PostgreSQL nor shown)."""
    errors: list[FieldError] = []
    stack: list[tuple[tuple[int | str, ...], Any]] = [((), body)]
    while stack and len(errors) < 10:
        loc, value = stack.pop()
        if len(loc) > MAX_BODY_DEPTH:
            return [FieldError(field="body", message=(
                f"the body is nested too deeply (a body takes at most {MAX_BODY_DEPTH} levels)."))]
        items: list[tuple[int | str, Any]] = []
        if isinstance(value, dict):
            for name, item in value.items():
                if (char := surrogate_in(name)) is not None:
                    errors.append(FieldError(field=field_name(loc) if loc else "body", message=(
                        f"a field name holds a lone surrogate ({describe(char)}), which is not a character.")))
                else:
                    items.append((name, item))
        elif isinstance(value, list):
            items = list(enumerate(value))
        elif isinstance(value, str) and (char := surrogate_in(value)) is not None:
            label = next((str(p) for p in reversed(loc) if isinstance(p, str)), "the body")
            errors.append(FieldError(field=field_name(loc), message=lone_surrogate(label, char) + "."))
        stack.extend(((*loc, name), item) for name, item in reversed(items))
    return errors


def create_app(settings: LedgerSettings, event_log: EventLog | None = None, keys: KeyStore | None = None) -> Flask:
    """The Flask app. Its state loads when something calls `ledger_of(app).load()`: `keep_loaded`,
    the worker main() runs, does at start and again whenever an append failed; until then commands
    and reads answer 503."""
    if event_log is None:
        event_log = EventLog(
            settings.kafka_bootstrap_servers,
            client_id="ledger",
            topic_prefix=settings.topic_prefix,
            transactional_id=f"{settings.topic_prefix}ledger",
            timeout_s=settings.kafka_timeout_s,
        )
    settings.refuse_local_secrets("LEDGER_TOKEN", "LEDGER_KEYS_TOKEN", "LEDGER_KEYS_SECRET")
    if keys is None:
        keys = KeyStore(keystore.make_engine(settings.ledger_keys_database_url), settings.ledger_keys_secret)
    ledger = Ledger(event_log, keys, bootstrap_servers=settings.kafka_bootstrap_servers,
                    topic_prefix=settings.topic_prefix)
    app = Flask("reciprocity.ledger")
    app.extensions[EXTENSION] = ledger
    retry_after = str(settings.retry_after_s)

    def unavailable(err: Exception) -> tuple[Response, int, dict[str, str]]:
        log.warning("answering 503: %s", err)
        if isinstance(err, NotReady):
            message = f"The ledger cannot take commands right now ({err}); nothing was recorded, please try again."
        else:
            message = "Kafka is out of reach, so nothing was recorded; please try again in a moment."
        return _error(503, message, **{"Retry-After": retry_after})

    def count_refused() -> None:
        COMMANDS_TOTAL.labels(request.endpoint or "unknown", "unauthorized").inc()

    # The document describes the API's shape, no data: open like /health and /metrics. The key API has a
    # token of its own (checked in its view): the projections that read keys cannot append commands, and
    # the web, which can, cannot read keys.
    require_bearer_token(app, settings.ledger_token, variable="LEDGER_TOKEN",
                         open_paths=(*OPEN_PATHS, "/openapi.json", KEYS_PATH), on_refused=count_refused)
    keys_token = settings.ledger_keys_token.encode()

    @app.post(KEYS_PATH)
    def member_keys() -> Any:
        """Member keys for the projections: `{"members": [ids]}` -> `{"keys": {id: base64}, "forgotten": [ids]}`.
        Members with no key are in neither. Never logged, never cached by HTTP."""
        if not token_matches(bearer_token(request.headers.get("Authorization", "")), keys_token):
            count_refused()
            return _error(401, "a valid bearer token is required (Authorization: Bearer <LEDGER_KEYS_TOKEN>)",
                          **{"WWW-Authenticate": 'Bearer realm="ledger-keys"'})
        body = request.get_json(silent=True)
        members = body.get("members") if isinstance(body, dict) else None
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members) or len(members) > 10_000:
            return _invalid([FieldError(field="members", message="a list of at most 10,000 member ids is required.")])
        found = ledger.keys.member_keys(members)
        KEYS_SERVED.inc(sum(1 for k in found.values() if k is not None))
        answer = jsonify(keys={m: base64.b64encode(k).decode() for m, k in found.items() if k is not None},
                         forgotten=sorted(m for m, k in found.items() if k is None))
        answer.headers["Cache-Control"] = "no-store"
        return answer

    @app.get("/v1/forgettings")
    def forgettings() -> Any:
        """Forgettings for the operator page: when, and which operator asked; never whom."""
        try:
            found = ledger.query(lambda state: list(state.forgotten.values()))
        except NotReady as err:
            return unavailable(err)
        items = sorted(found, key=lambda f: f.at.isoformat() if f.at else "", reverse=True)
        return jsonify(forgettings=[{"at": f.at.isoformat() if f.at else None, "requested_by": f.requested_by}
                                    for f in items])

    def command_view(route: CommandRoute) -> Callable[..., Any]:
        def view(**path: str) -> Any:
            outcome, answer = _run(route, path)
            COMMANDS_TOTAL.labels(route.name, outcome).inc()
            return answer

        def _run(route: CommandRoute, path: dict[str, str]) -> tuple[str, Any]:
            key = request.headers.get(KEY_HEADER)
            if not key:
                # Without a key a client's retry (after a timeout, a dropped connection) appends twice.
                return "invalid", _invalid([FieldError(field=KEY_HEADER, message=(
                    f"the {KEY_HEADER} header is required: a fresh value (a UUID, say) per command, the same "
                    "one again when retrying it."))])
            if not (len(key) <= KEY_MAX and key.isprintable() and key.isascii()):
                return "invalid", _invalid([FieldError(field=KEY_HEADER, message=(
                    f"the {KEY_HEADER} header must be 1 to {KEY_MAX} printable ASCII characters."))])
            raw = request.get_data(cache=False)
            try:
                body = _parse_json(raw) if raw.strip() else {}
            except (ValueError, UnicodeDecodeError) as err:
                return "invalid", _invalid([FieldError(field="body", message=f"the body is not valid JSON ({err}).")])
            if not isinstance(body, dict):
                return "invalid", _invalid([FieldError(field="body", message="the body must be a JSON object.")])
            if unreadable := _unreadable_parts(body):
                return "invalid", _invalid(unreadable)
            target = path.get(route.param) if route.param else None
            try:
                answer = ledger.execute(route.body, body, target=target, key=key,
                                        request_fingerprint=fingerprint(route.method, request.path, body))
            except ValidationError as err:
                return "invalid", _invalid(field_errors(err))
            except InvalidCommand as err:
                return "invalid", _invalid(err.errors)
            except KeyReused:
                return "invalid", _invalid([FieldError(field=KEY_HEADER, message=(
                    f"this {KEY_HEADER} was already used for a different request; a retry must repeat the "
                    "same method, path and body, and a new request needs a new key."))])
            except Unknown as err:
                return "unknown", _error(404, f"{err}.")
            except Conflict as err:
                return "conflict", _error(409, f"{err}.")
            except (BrokerUnavailable, NotReady) as err:
                return "unavailable", unavailable(err)
            if answer.replayed:
                return "replayed", (jsonify(answer.body), answer.status, {REPLAYED_HEADER: "true"})
            if answer.status == 201:
                EVENTS_APPENDED.labels(answer.body["topic"]).inc(answer.body.get("count", 1))
                return "accepted", (jsonify(answer.body), 201)
            return "unchanged", (jsonify(answer.body), answer.status)

        view.__name__ = route.name
        return view

    def query_view(route: QueryRoute) -> Callable[..., Any]:
        readers: dict[str, Callable[[LedgerState, str | None], Any]] = {
            "get_circle": lambda s, i: circle_view(s, s.circles[i]) if i in s.circles else None,
            "get_member": lambda s, i: member_view(s, s.members[i]) if i in s.members else None,
            "get_exchange": lambda s, i: exchange_view(s.exchanges[i]) if i in s.exchanges else None,
            "stats": lambda s, _i: stats(s),
        }
        reader = readers[route.name]

        def view(**path: str) -> Any:
            target = path.get(route.param) if route.param else None
            try:
                found = ledger.query(lambda state: reader(state, target))
            except NotReady as err:
                return unavailable(err)
            if found is None:
                return _error(404, f"there is no {route.param.removesuffix('_id') if route.param else 'such'} "
                                   f"'{target}'.")
            return jsonify(found.model_dump(mode="json"))

        view.__name__ = route.name
        return view

    for command in COMMANDS:
        app.add_url_rule(command.path, command.name, command_view(command), methods=[command.method])
    for query in QUERIES:
        app.add_url_rule(query.path, query.name, query_view(query), methods=["GET"])

    document = openapi_document()

    @app.get("/openapi.json")
    def openapi() -> Response:
        return jsonify(document)

    @app.get("/health")
    def health() -> Any:
        stale = ledger.stale_reason
        STATE_LOADED.set(0 if stale else 1)
        if stale:
            # The loader is busy reaching Kafka already: report what it last ran into rather than wait
            # on another connection attempt here.
            return health_response({"state": stale, "kafka": ledger.last_load_error})
        kafka = None if event_log.ping(EXCHANGES.name) else (
            f"Kafka at {settings.kafka_bootstrap_servers} does not answer")
        return health_response({"state": None, "kafka": kafka})

    add_metrics_route(app)

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException) -> Any:
        if err.code == 404:
            return _error(404, f"there is no endpoint {request.method} {request.path}.")
        if err.code == 405:
            return _error(405, f"{request.method} is not allowed on {request.path}.")
        return _error(err.code or 500, err.description or "error")

    @app.errorhandler(Exception)
    def unexpected(err: Exception) -> Any:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return _error(500, "the ledger failed unexpectedly; nothing was recorded.")

    return app


def keep_loaded(app: Flask, settings: LedgerSettings) -> Callable[[threading.Event], None]:
    """A worker that creates the topics and (re)loads the state whenever it is not trusted, retrying
    while Kafka is out of reach."""
    ledger = ledger_of(app)

    def run(stop: threading.Event) -> None:
        topics_ready = False
        while not stop.is_set():
            if ledger.stale_reason is not None:
                try:
                    if not topics_ready:
                        ensure_topics(settings.kafka_bootstrap_servers, all_topics(settings.topic_prefix))
                        topics_ready = True
                    ledger.load()
                    STATE_LOADED.set(1)
                except Exception as err:  # the broker is not up yet (or went away): try again
                    ledger.last_load_error = f"cannot read the ledger topics yet: {err}"
                    log.warning("cannot load the state yet (%r); retrying", err)
                    stop.wait(2.0)
                    continue
            stop.wait(0.5)

    return run


def main() -> None:
    from .bootstrap import bootstrap

    settings = LedgerSettings()
    # Here, in gunicorn's master: one clear line, no worker boots.
    settings.refuse_local_secrets("LEDGER_TOKEN", "LEDGER_KEYS_TOKEN", "LEDGER_KEYS_SECRET")
    serve_api(bootstrap(settings), settings)


if __name__ == "__main__":
    # Run as `python -m reciprocity.ledger.app`, this module is `__main__`; bootstrap imports it by its name, and a
    # second copy would register its metrics twice.
    sys.modules.setdefault("reciprocity.ledger.app", sys.modules[__name__])
    main()
