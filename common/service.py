"""Running a service's roles: each HTTP API under gunicorn, each consumer or sweep as a process of its own.

A service's `bootstrap.py` describes its roles as a `ServiceRoles`: how to build its Flask app, its
migrations, and its worker roles (a projector, a sender, a sweep: threads that run until stopped, with
a health check). Production entry points and tests use that one description:

- `serve_api(roles, settings)`: the API under gunicorn (`python -m reciprocity.<service>.app`). The
  master runs the migrations once, then forks HTTP_WORKERS processes of HTTP_THREADS threads each;
  every worker process builds its own app (database pools and Kafka clients are not shared across a
  fork). SIGTERM: stop accepting, finish what is in flight (HTTP_GRACEFUL_TIMEOUT_S), exit.
- `run_worker(roles, role, settings)`: one worker role in this process
  (`python -m reciprocity.<service>.worker ROLE`), with a small probe on HEALTH_PORT answering
  GET /health (what this role needs: its database, its broker connection, its SMTP server) and
  GET /metrics (this process's own counters). SIGTERM: stop the threads, close, exit 0; a thread that
  dies on its own makes the process exit 1, so the supervisor restarts it.
"""

from __future__ import annotations

import functools
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import msgspec
from flask import Flask, Response, jsonify
from flask.json.provider import DefaultJSONProvider
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger(__name__)

Worker = Callable[[threading.Event], None]
Health = Callable[[], dict[str, str | None]]


def setup_logging(service: str, level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stdout,
        format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    # kafka-python is chatty at INFO about every reconnect.
    logging.getLogger("kafka").setLevel(logging.WARNING)


def health_body(problems: dict[str, str | None], details: dict[str, Any] | None = None
                ) -> tuple[dict[str, Any], int]:
    """200 when every check is None (fine), else 503 naming each failing check and why. `details` are
    shown beside the checks and decide nothing (how many records a consumer parked, say)."""
    failing = {name: why for name, why in problems.items() if why}
    body: dict[str, Any] = {"status": "ok" if not failing else "unavailable", "checks": {
        name: (why or "ok") for name, why in problems.items()
    }, **(details or {})}
    return body, (200 if not failing else 503)


def health_response(problems: dict[str, str | None], details: dict[str, Any] | None = None) -> tuple[Response, int]:
    body, status = health_body(problems, details)
    return jsonify(body), status


class FastJSON(DefaultJSONProvider):
    """`jsonify` through msgspec's encoder, in the order the dict was built (no sorting), compact, UTF-8:
    the same values as Flask's own provider for the read models' answers (str, int, float, bool, None,
    lists and dicts; days and times are ISO text already), written several times faster. Under load
    balance's answers (fifty exchanges a history page, a wall page) spent a measurable part of its CPU in
    json. A `date` or `datetime` would be written as ISO text (Flask's provider writes an HTTP date);
    any other type it does not know is an error where the answer is built.

    Use: `app.json = FastJSON(app)`."""

    sort_keys = False

    def response(self, *args: Any, **kwargs: Any) -> Response:
        obj = self._prepare_response_obj(args, kwargs)
        body = msgspec.json.encode(obj, enc_hook=_refuse, order=None) + b"\n"
        return Response(body, mimetype=self.mimetype)


def _refuse(obj: Any) -> Any:
    raise TypeError(f"{type(obj).__name__} is not JSON here: convert it where the answer is built")


def add_metrics_route(app: Flask) -> None:
    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)


# -- what a bootstrap returns ----------------------------------------------------------------------------


@dataclass
class WorkerRole:
    """A role without an HTTP API: threads that run until the event is set, what /health checks, and
    what to close after the threads have stopped."""

    threads: list[tuple[str, Worker]]
    health: Health
    close: Callable[[], None] = lambda: None
    # Shown beside the checks by /health and deciding nothing (a consumer's parked records, say).
    details: Callable[[], dict[str, Any]] = dict
    # What the role is made of (balance's BalanceService, notify's Notifier), for tests and tools.
    parts: Any = None


@dataclass
class ApiProcess:
    """The API as one server process has it: the app, threads it needs beside it (the ledger's state
    loader), and what to close when the process stops."""

    app: Flask
    threads: list[tuple[str, Worker]] = field(default_factory=list)
    close: Callable[[], None] = lambda: None


@dataclass
class ServiceRoles:
    """Everything a service runs. `api` is called once in each server process (after gunicorn's fork);
    `migrate` once before any of them starts; `workers[role]` in the process of that role."""

    name: str
    api: Callable[[], ApiProcess]
    migrate: Callable[[], None] = lambda: None
    workers: Mapping[str, Callable[[], WorkerRole]] = field(default_factory=dict)


# -- threads of a process -----------------------------------------------------------------------------


class Threads:
    """Named worker threads sharing one stop event."""

    def __init__(self, workers: list[tuple[str, Worker]]) -> None:
        self.stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(name, fn), name=name, daemon=True)
                         for name, fn in workers]
        self.died = threading.Event()

    def _run(self, name: str, fn: Worker) -> None:
        try:
            fn(self.stop)
        except Exception:
            log.exception("%s failed", name)
        if not self.stop.is_set():
            log.error("%s stopped on its own; stopping this process so that it is restarted", name)
            self.died.set()
            self.stop.set()

    def start(self) -> Threads:
        for thread in self._threads:
            thread.start()
        return self

    def join(self, timeout_s: float) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=timeout_s)
            if thread.is_alive():
                log.warning("%s did not stop within %.0fs", thread.name, timeout_s)


# -- the API under gunicorn ---------------------------------------------------------------------------


def gunicorn_options(settings: Any) -> dict[str, Any]:
    """gunicorn's settings from the service's: HOST/PORT, HTTP_WORKERS, HTTP_THREADS, HTTP_TIMEOUT_S,
    HTTP_GRACEFUL_TIMEOUT_S, HTTP_ACCESS_LOG, LOG_LEVEL. Logs go to stdout, like the services' own."""
    threads = int(settings.http_threads)
    return {
        "bind": f"{settings.host}:{settings.port}",
        "workers": int(settings.http_workers),
        "threads": threads,
        # gthread: each worker serves HTTP_THREADS requests at once (a slow upstream does not block it);
        # with one thread the plain sync worker is the same thing with less machinery.
        "worker_class": "gthread" if threads > 1 else "sync",
        "timeout": int(settings.http_timeout_s),
        "graceful_timeout": int(settings.http_graceful_timeout_s),
        "keepalive": 5,
        "errorlog": "-",
        "accesslog": "-" if settings.http_access_log else None,
        "loglevel": settings.log_level.lower(),
        "proc_name": None,
        # The workers' temporary heartbeat files: /dev/shm is memory, so a slow disk never looks like a
        # hung worker (what gunicorn's docs advise in containers).
        "worker_tmp_dir": "/dev/shm",
        "capture_output": False,
    }


def serve_api(roles: ServiceRoles, settings: Any) -> None:
    """Run `roles.api` under gunicorn until SIGTERM/SIGINT (blocks; exits the process on failure)."""
    from gunicorn.app.base import BaseApplication

    process: dict[str, Any] = {}

    def on_starting(_server: Any) -> None:
        roles.migrate()  # once, in the master, before any worker serves a request

    def post_fork(_server: Any, _worker: Any) -> None:
        setup_logging(roles.name, settings.log_level)

    def worker_exit(_server: Any, _worker: Any) -> None:
        threads: Threads | None = process.get("threads")
        if threads is not None:
            threads.join(timeout_s=10)
        api: ApiProcess | None = process.get("api")
        if api is not None:
            api.close()

    class Gunicorn(BaseApplication):
        def load_config(self) -> None:
            options = {**gunicorn_options(settings), "on_starting": on_starting, "post_fork": post_fork,
                       "worker_exit": worker_exit}
            # gunicorn 25+ opens a control socket at a fixed path (~/.gunicorn): several servers on one
            # host would fight over it, and nothing here uses it.
            if "control_socket_disable" in self.cfg.settings:
                options["control_socket_disable"] = True
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            # In the worker process (no preload): its own app, pools and clients.
            api = roles.api()
            process["api"] = api
            if api.threads:
                process["threads"] = Threads(api.threads).start()
            return api.app

    setup_logging(roles.name, settings.log_level)
    log.info("%s API on http://%s:%s (gunicorn, %s worker(s) x %s thread(s))", roles.name, settings.host,
             settings.port, settings.http_workers, settings.http_threads)
    Gunicorn().run()


# -- a worker role as a process -----------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: not news
        return


class _ThreadingWSGIServer(WSGIServer):
    daemon_threads = True

    def process_request(self, request: Any, client_address: Any) -> None:
        threading.Thread(target=self._handle, args=(request, client_address), daemon=True).start()

    def _handle(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)


def _with_server_header(start_response: Callable[..., Any], status: str, headers: list[tuple[str, str]],
                        *rest: Any) -> Any:
    return start_response(status, [*headers, ("Server", "reciprocity")], *rest)


def probe_app(name: str, health: Health, details: Callable[[], dict[str, Any]] = dict) -> Callable[..., Any]:
    """The WSGI app of a worker's probe: GET /health and GET /metrics, nothing else."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        # Our own Server header, or wsgiref adds "WSGIServer/0.2 CPython/3.x" (versions are for attackers).
        start_response = functools.partial(_with_server_header, start_response)
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [generate_latest()]
        if path == "/health":
            try:
                problems, shown = health(), details()
            except Exception as err:  # a check that itself fails is an unhealthy answer, not a crash
                problems, shown = {"health": f"the health check failed: {err!r}"[:300]}, {}
            body, status = health_body(problems, shown)
            body["role"] = name
            start_response(f"{status} {'OK' if status == 200 else 'Service Unavailable'}",
                           [("Content-Type", "application/json")])
            return [json.dumps(body).encode()]
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [json.dumps({"error": f"{name} answers only GET /health and GET /metrics"}).encode()]

    return app


def run_worker(roles: ServiceRoles, role_name: str, settings: Any) -> int:
    """Run one worker role in this process until SIGTERM/SIGINT; returns the exit status."""
    name = f"{roles.name}-{role_name}"
    setup_logging(name, settings.log_level)
    if role_name not in roles.workers:
        log.error("%s has no role %r (roles: %s)", roles.name, role_name, ", ".join(roles.workers))
        return 2
    roles.migrate()
    role = roles.workers[role_name]()
    threads = Threads(role.threads)

    def shutdown(signum: int, _frame: object) -> None:
        log.info("stopping on signal %d", signum)
        threads.stop.set()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    probe = None
    if settings.health_port:
        probe = make_server(settings.host, settings.health_port, probe_app(name, role.health, role.details),
                            server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)
        threading.Thread(target=probe.serve_forever, name=f"{name}-probe", daemon=True).start()
        log.info("%s running; health on http://%s:%d/health", name, settings.host, settings.health_port)
    threads.start()
    try:
        threads.stop.wait()
    finally:
        threads.join(timeout_s=float(settings.http_graceful_timeout_s))
        role.close()
        if probe is not None:
            probe.shutdown()
    return 1 if threads.died.is_set() else 0


def worker_main(roles: ServiceRoles, settings: Any, argv: list[str] | None = None) -> None:
    """`python -m reciprocity.<service>.worker ROLE`: parse the role, run it, exit with its status."""
    import argparse

    parser = argparse.ArgumentParser(prog=f"python -m reciprocity.{roles.name}.worker",
                                     description=f"Run one worker role of {roles.name} in this process.")
    parser.add_argument("role", choices=sorted(roles.workers))
    args = parser.parse_args(argv)
    sys.exit(run_worker(roles, args.role, settings))
