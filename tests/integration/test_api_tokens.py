"""balance's and notify's read APIs hold notes, emails and wellbeing signals: every route but /health and
/metrics refuses a request without their bearer token, or with a wrong one, and serves the right one."""

from __future__ import annotations

import re
from pathlib import Path

from flask import Flask
from reciprocity.balance.app import create_app as balance_app
from reciprocity.balance.db import make_engine, migrate
from reciprocity.balance.settings import BalanceSettings
from reciprocity.notify.app import create_app as notify_app
from reciprocity.notify.bootstrap import Notifier
from reciprocity.notify.settings import NotifySettings

OPEN = {"/health", "/metrics"}


def every_route(app: Flask) -> list[tuple[str, str]]:
    """(method, path) of every route the app serves, with a made-up value in each path parameter."""
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: f"some-{m.group(1).replace('_', '-')}", rule.rule)
        routes += [(method, path) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return routes


def check(app: Flask, token: str) -> None:
    client = app.test_client()
    routes = every_route(app)
    assert len(routes) > 3
    for method, path in [*routes, ("GET", "/v1/no-such-route")]:
        if path in OPEN:
            assert client.open(path, method=method).status_code in (200, 503), path
            continue
        for headers in ({}, {"Authorization": "Bearer not-the-token"}, {"Authorization": token},
                        {"Authorization": f"Basic {token}"}, {"Authorization": "Bearer "}):
            answer = client.open(path, method=method, headers=headers)
            assert answer.status_code == 401, (method, path, headers, answer.status_code)
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
            assert "some-" not in answer.get_data(as_text=True)  # nothing about what was asked for
        served = client.open(path, method=method, headers={"Authorization": f"Bearer {token}"})
        assert served.status_code != 401, (method, path)


def test_balance_routes_need_balance_token(tmp_path: Path) -> None:
    settings = BalanceSettings(database_url=f"sqlite:///{tmp_path}/balance.db", balance_token="balance-secret-1")
    engine = make_engine(settings.database_url, immediate=False)
    migrate(engine)
    app = balance_app(settings, engine=engine, end_offsets_fn=dict, dead_letters_fn=list)
    check(app, "balance-secret-1")
    # The notify token, or the ledger's, opens nothing here.
    assert app.test_client().get("/v1/directory/members",
                                 headers={"Authorization": f"Bearer {settings.notify_token}"}).status_code == 401
    engine.dispose()


def test_notify_routes_need_notify_token(tmp_path: Path) -> None:
    settings = NotifySettings(database_url=f"sqlite:///{tmp_path}/notify.db", kafka_bootstrap_servers="127.0.0.1:9",
                              notify_token="notify-secret-1")
    notifier = Notifier(settings)
    try:
        check(notify_app(notifier=notifier), "notify-secret-1")
    finally:
        notifier.close()


def test_worker_probes_name_no_software_versions() -> None:
    from reciprocity.common.service import probe_app

    seen: list[tuple[str, list[tuple[str, str]]]] = []
    app = probe_app("balance-sweep", dict)
    body = b"".join(app({"PATH_INFO": "/health"}, lambda status, headers, *_: seen.append((status, headers))))
    assert seen[0][0].startswith("200") and b"balance-sweep" in body
    assert dict(seen[0][1])["Server"] == "reciprocity"  # wsgiref would say "WSGIServer/0.2 CPython/3.11.x"
