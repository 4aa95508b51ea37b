"""The web as a real process (`python -m reciprocity.web.app`) talking HTTP to stand-in ledger and
balance servers: its real clients, settings, database and cookies, without needing Kafka.

The stand-ins speak the documented shapes (balance's read API from the brief, the ledger's command
API from the spec), served from the same in-memory world the unit tests use.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask, jsonify, request
from reciprocity.web.accounts import set_password
from werkzeug.serving import make_server

from devstack.ports import free_port
from tests.support.services import ServiceProcess, wait_for
from tests.support.web_fakes import DEMO_PASSWORD, FakeBalance, demo_world, fake_clients

TOKEN = "process-test-token"
BALANCE_TOKEN = "process-test-balance-token"


def balance_server(balance: FakeBalance) -> Flask:
    app = Flask("stand-in-balance")

    def dump(value: Any) -> Any:
        if isinstance(value, list):
            return [dump(v) for v in value]
        return value.model_dump(mode="json", by_alias=True)

    @app.before_request
    def authenticate() -> Any:
        # As the real balance does: everything but /health needs the web's BALANCE_TOKEN.
        if request.path != "/health" and request.headers.get("Authorization") != f"Bearer {BALANCE_TOKEN}":
            return jsonify(error="missing or wrong token"), 401
        return None

    @app.get("/health")
    def health() -> Any:
        return jsonify(status="ok")

    @app.get("/v1/directory/members/<member_id>")
    def member(member_id: str) -> Any:
        if member_id not in balance.members_by_id:
            return jsonify(error=f"unknown member {member_id}"), 404
        return jsonify(dump(balance.member(member_id)))

    @app.get("/v1/directory/members")
    def members() -> Any:
        return jsonify(members=dump(balance.members(request.args.get("q", ""), request.args.get("circle", ""))))

    @app.get("/v1/members/<member_id>/summary")
    def summary(member_id: str) -> Any:
        return jsonify(dump(balance.summary(member_id, request.args.get("window", "28d"))))

    @app.get("/v1/members/<member_id>/timeline")
    def timeline(member_id: str) -> Any:
        return jsonify(dump(balance.timeline(member_id, int(request.args.get("weeks", 12)))))

    @app.get("/v1/members/<member_id>/relationships")
    def relationships(member_id: str) -> Any:
        rel = balance.relationships(member_id, request.args.get("window", "90d"))
        return jsonify(member_id=member_id, relationships=dump(rel))

    @app.get("/v1/members/<member_id>/exchanges")
    def exchanges(member_id: str) -> Any:
        found = balance.exchanges(member_id, request.args.get("status"), int(request.args.get("limit", 50)))
        return jsonify(exchanges=dump(found))

    @app.get("/v1/members/<member_id>/dashboard")
    def dashboard(member_id: str) -> Any:
        return jsonify(dump(balance.dashboard(member_id, request.args.get("window", "28d"),
                                              int(request.args.get("weeks", 12)))))

    @app.get("/v1/signals")
    def signals() -> Any:
        found = balance.signals(circle=request.args.get("circle", ""), member=request.args.get("member", ""),
                                active=request.args.get("active", "true") == "true")
        return jsonify(signals=dump(found))

    @app.get("/v1/exchanges/<exchange_id>")
    def exchange(exchange_id: str) -> Any:
        if exchange_id not in balance.exchanges_by_id:
            return jsonify(error=f"unknown exchange {exchange_id}"), 404
        return jsonify(dump(balance.exchange(exchange_id)))

    return app


def ledger_server(received: list[dict[str, Any]], down: threading.Event) -> Flask:
    app = Flask("stand-in-ledger")

    @app.get("/health")
    def health() -> Any:
        return (jsonify(status="unavailable"), 503) if down.is_set() else jsonify(status="ok")

    @app.post("/v1/exchanges")
    def record() -> Any:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return jsonify(error="missing or wrong token"), 401
        received.append({"key": request.headers.get("Idempotency-Key"), "body": request.get_json()})
        return jsonify(event_id=str(uuid.uuid4()), topic="ledger.exchanges", partition=0, offset=len(received),
                       id=f"x-{len(received):016x}"), 201

    @app.get("/v1/exchanges/<exchange_id>")
    def exchange(exchange_id: str) -> Any:
        """What the web asks while balance has not shown a new exchange yet: does the ledger have it?"""
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return jsonify(error="missing or wrong token"), 401
        for i, sent in enumerate(received, start=1):
            if exchange_id == f"x-{i:016x}":
                return jsonify(exchange_id=exchange_id, status="recorded", **sent["body"])
        return jsonify(error=f"there is no exchange {exchange_id!r}."), 404

    return app


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    clients = fake_clients()
    demo_world(clients)
    received: list[dict[str, Any]] = []
    ledger_down = threading.Event()
    web_db = f"sqlite:///{tmp_path}/web.db"
    set_password(web_db, "ada", DEMO_PASSWORD)
    with serving(balance_server(clients.balance)) as balance_url, \
            serving(ledger_server(received, ledger_down)) as ledger_url, \
            ServiceProcess("reciprocity.web.app", log_dir=tmp_path, env={
                "LEDGER_URL": ledger_url, "LEDGER_TOKEN": TOKEN, "BALANCE_URL": balance_url,
                "BALANCE_TOKEN": BALANCE_TOKEN,
                "NOTIFY_URL": "http://127.0.0.1:9", "DATABASE_URL": web_db, "SECRET_KEY": uuid.uuid4().hex,
            }) as web:
        yield {"web": web, "received": received, "ledger_down": ledger_down}


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, name
    return found.group(1)


def test_health_names_the_service_that_is_down(world: dict[str, Any]) -> None:
    url = world["web"].url
    assert requests.get(url + "/health", timeout=30).status_code == 200
    world["ledger_down"].set()
    answer = requests.get(url + "/health", timeout=30)
    assert answer.status_code == 503
    assert answer.json()["checks"] == {"ledger": "unavailable", "balance": "ok", "database": "ok"}
    # Public: it says what is down, never where the internal services live, nor what software serves it.
    assert not re.search(r"Werkzeug|Python|\d+\.\d+", answer.headers.get("Server", "")), answer.headers
    assert "127.0.0.1" not in answer.text and "http" not in answer.text
    assert b"web_requests_total" in requests.get(url + "/metrics", timeout=30).content


def test_sign_in_and_record_over_http(world: dict[str, Any]) -> None:
    url = world["web"].url
    browser = requests.Session()
    token = hidden(browser.get(url + "/signin", timeout=30).text, "csrf_token")
    signed_in = browser.post(url + "/signin", timeout=10, allow_redirects=False,
                             data={"csrf_token": token, "member_id": "ada", "password": DEMO_PASSWORD})
    assert signed_in.status_code == 302
    cookie = signed_in.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie

    dashboard = browser.get(url + "/", timeout=10)
    assert "Hello, Ada Lovelace" in dashboard.text and 'id="given-total"' in dashboard.text

    form_page = browser.get(url + "/exchanges/new", timeout=10).text
    form = {"csrf_token": hidden(form_page, "csrf_token"), "idempotency_key": hidden(form_page, "idempotency_key"),
            "direction": "received", "other": "chen", "kind": "care", "minutes": "40",
            "occurred_on": date.today().isoformat(), "note": "Soup when I was ill"}
    first = browser.post(url + "/exchanges/new", data=form, timeout=10, allow_redirects=False)
    assert first.status_code == 303
    assert first.headers["Location"].startswith("/exchanges/x-0000000000000001?expect=recorded")
    (sent,) = world["received"]
    assert sent["key"] == form["idempotency_key"]
    assert sent["body"] == {"giver": "chen", "receiver": "ada", "kind": "care", "minutes": 40,
                            "note": "Soup when I was ill", "occurred_on": date.today().isoformat(),
                            "recorded_by": "ada", "shared": False}
    # Not in the (stand-in) read side yet: the page says so and looks again by itself.
    waiting = browser.get(url + first.headers["Location"], timeout=10)
    assert waiting.status_code == 200 and 'hx-trigger="load delay:1s"' in waiting.text

    people = browser.get(url + "/people", timeout=10, headers={"HX-Request": "true"})
    assert 'id="people-table"' in people.text and "<html" not in people.text
    assert "HX-Request" in people.headers["Vary"]


def test_web_stops_cleanly_on_sigterm(world: dict[str, Any]) -> None:
    web: ServiceProcess = world["web"]
    web.stop()
    assert web.proc is not None
    wait_for(lambda: web.proc.poll() is not None, 15, what="web to exit")
    assert web.proc.returncode == 0
