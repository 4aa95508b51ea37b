"""notify's HTTP side and entry point: `python -m reciprocity.notify.app` (gunicorn; the consumer and
the sender run in `python -m reciprocity.notify.worker sender`).

GET /health (database, Kafka consumer, SMTP while deliveries wait), GET /metrics, and the operators'
view of the delivery log: GET /v1/deliveries?status=pending|sent|failed|suppressed|waiting&member=&alert_id=&limit=
-> {"deliveries": [...], "counts": {...}}, GET /v1/alerts/<event_id> -> the alert and its deliveries.
"""

from __future__ import annotations

import sys

import sqlalchemy as sa
from flask import Flask, Response, jsonify, request
from reciprocity.common.auth import require_bearer_token
from reciprocity.common.db import reading
from reciprocity.common.service import add_metrics_route, health_response, serve_api
from sqlalchemy.engine import Engine

from . import metrics, store
from .bootstrap import Notifier, database_problem
from .openapi import openapi_document
from .settings import NotifySettings

STATUSES = (*store.DELIVERY_STATUSES, "waiting")


def create_app(settings: NotifySettings | None = None, *, notifier: Notifier | None = None,
               engine: Engine | None = None) -> Flask:
    """The read API over the delivery log. In its own process (`engine`) its /health is the database it
    reads; with a `notifier` in the same process (tests), the notifier's checks (database, Kafka, SMTP)."""
    settings = notifier.settings if notifier is not None else (settings or NotifySettings())
    settings.refuse_local_secrets("NOTIFY_TOKEN")
    if notifier is None and engine is None:
        notifier = Notifier(settings)
    reader: Engine = notifier.engine if notifier is not None else engine  # type: ignore[assignment]
    app = Flask(__name__)
    app.extensions["notifier"] = notifier
    # The delivery log names leads, their addresses and what alerts were about: NOTIFY_TOKEN holders only.
    require_bearer_token(app, settings.notify_token, variable="NOTIFY_TOKEN")

    @app.get("/health")
    def health() -> tuple[Response, int]:
        if notifier is None:
            return health_response({"database": database_problem(reader)})
        return health_response(notifier.health(), {"consumer": notifier.consumer.health.summary()})

    document = openapi_document(STATUSES)

    @app.get("/openapi.json")
    def openapi() -> Response:
        return jsonify(document)

    @app.before_request
    def refresh_gauges() -> None:
        # Gauges from the database at scrape time, so they are right after a restart too.
        if request.path != "/metrics":
            return
        with reading(reader) as conn:
            counts = store.count_by_status(conn)
        for status in store.DELIVERY_STATUSES:
            metrics.DELIVERIES.labels(status).set(counts[status])
        metrics.PENDING.set(counts["pending"])
        metrics.WAITING.set(counts.get("alerts_waiting", 0))

    add_metrics_route(app)

    @app.get("/v1/deliveries")
    def list_deliveries() -> tuple[Response, int]:
        status = request.args.get("status") or None
        if status is not None and status not in STATUSES:
            return jsonify(error=f"status must be one of {', '.join(STATUSES)}"), 422
        try:
            limit = int(request.args.get("limit", "100"))
        except ValueError:
            return jsonify(error="limit must be a whole number"), 422
        if not 1 <= limit <= 1000:
            return jsonify(error="limit must be between 1 and 1000"), 422
        with reading(reader) as conn:
            listed = store.list_deliveries(conn, status=status, member_id=request.args.get("member") or None,
                                           alert_id=request.args.get("alert_id") or None, limit=limit)
            counts = store.count_by_status(conn)
        return jsonify(deliveries=listed, counts=counts), 200

    @app.get("/v1/alerts/<event_id>")
    def alert(event_id: str) -> tuple[Response, int]:
        with reading(reader) as conn:
            row = conn.execute(sa.select(store.alerts).where(store.alerts.c.event_id == event_id)).first()
            if row is None:
                return jsonify(error=f"no alert {event_id}"), 404
            listed = store.list_deliveries(conn, alert_id=event_id, limit=1000)
        return jsonify(
            alert_id=row.event_id, type=row.type, member_id=row.member_id, kind=row.kind, status=row.status,
            reason=row.reason, attempts=row.attempts, signal_at=store.iso(row.signal_at),
            first_seen_at=store.iso(row.first_seen_at), resolved_at=store.iso(row.resolved_at),
            deliveries=[d for d in listed if d["recipient"] is not None],
        ), 200

    return app


def main() -> None:
    from .bootstrap import bootstrap

    settings = NotifySettings()
    settings.refuse_local_secrets("NOTIFY_TOKEN")
    serve_api(bootstrap(settings), settings)


if __name__ == "__main__":
    # Run as `python -m reciprocity.notify.app`, this module is `__main__`; bootstrap imports it by its name, and a
    # second copy would register its metrics twice.
    sys.modules.setdefault("reciprocity.notify.app", sys.modules[__name__])
    main()
