"""Serving settings and the worker probe (common/service.py), without starting a server."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError
from reciprocity.balance.settings import BalanceSettings
from reciprocity.common.service import gunicorn_options, probe_app
from reciprocity.ledger.settings import LedgerSettings


def call(app: Any, path: str) -> tuple[str, dict[str, Any]]:
    seen: dict[str, str] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"] = status

    body = b"".join(app({"PATH_INFO": path, "REQUEST_METHOD": "GET"}, start_response))
    return seen["status"], json.loads(body) if body.startswith(b"{") else {}


def test_gunicorn_takes_workers_threads_and_timeouts_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"HTTP_WORKERS": "3", "HTTP_THREADS": "6", "HTTP_TIMEOUT_S": "45",
                        "HTTP_GRACEFUL_TIMEOUT_S": "12", "PORT": "18999", "HOST": "0.0.0.0"}.items():
        monkeypatch.setenv(name, value)
    options = gunicorn_options(BalanceSettings())
    assert options["bind"] == "0.0.0.0:18999"
    assert (options["workers"], options["threads"], options["worker_class"]) == (3, 6, "gthread")
    assert (options["timeout"], options["graceful_timeout"]) == (45, 12)
    monkeypatch.setenv("HTTP_THREADS", "1")
    assert gunicorn_options(BalanceSettings())["worker_class"] == "sync"


def test_the_ledger_refuses_more_than_one_server_process(monkeypatch: pytest.MonkeyPatch) -> None:
    assert LedgerSettings().http_workers == 1
    monkeypatch.setenv("HTTP_WORKERS", "2")
    with pytest.raises(ValidationError, match="exactly one process"):
        LedgerSettings()


def test_a_worker_probe_says_what_its_role_needs() -> None:
    problems: dict[str, str | None] = {"database": None, "kafka": None}
    app = probe_app("balance-projector", lambda: dict(problems), lambda: {"consumer": {"parked": 0}})
    status, body = call(app, "/health")
    assert status.startswith("200") and body["role"] == "balance-projector" and body["consumer"] == {"parked": 0}
    problems["kafka"] = "not connected to Kafka"
    status, body = call(app, "/health")
    assert status.startswith("503") and body["checks"]["kafka"] == "not connected to Kafka"

    def broken() -> dict[str, str | None]:
        raise RuntimeError("no database driver")

    status, body = call(probe_app("x", broken), "/health")
    assert status.startswith("503") and "no database driver" in body["checks"]["health"]
    assert call(app, "/metrics")[0].startswith("200")
    assert call(app, "/v1/anything")[0].startswith("404")
