"""Running a service: logging, an HTTP server, background workers, a clean stop on SIGTERM/SIGINT."""

import logging
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.serving import make_server

log = logging.getLogger(__name__)

Worker = Callable[[threading.Event], None]


def setup_logging(service: str, level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stdout,
        format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    # kafka-python is chatty at INFO about every reconnect.
    logging.getLogger("kafka").setLevel(logging.WARNING)


def health_response(problems: dict[str, str | None], details: dict[str, Any] | None = None) -> tuple[Response, int]:
    """200 when every check is None (fine), else 503 naming each failing check and why. `details` are
    shown beside the checks and decide nothing (how many records a consumer parked, say)."""
    failing = {name: why for name, why in problems.items() if why}
    body: dict[str, Any] = {"status": "ok" if not failing else "unavailable", "checks": {
        name: (why or "ok") for name, why in problems.items()
    }, **(details or {})}
    return jsonify(body), (200 if not failing else 503)


def add_metrics_route(app: Flask) -> None:
    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)


def run_service(app: Flask, *, host: str, port: int, workers: list[tuple[str, Worker]],
                on_stop: Callable[[], None] | None = None) -> None:
    """Serve `app` and run each worker in its own thread until SIGTERM or SIGINT."""
    stop = threading.Event()
    threads = [threading.Thread(target=w, args=(stop,), name=name, daemon=True) for name, w in workers]
    for t in threads:
        t.start()
    server = make_server(host, port, app, threaded=True)

    def shutdown(signum: int, _frame: object) -> None:
        log.info("stopping on signal %d", signum)
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    log.info("listening on http://%s:%d", host, port)
    try:
        server.serve_forever()
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
        if on_stop:
            on_stop()
