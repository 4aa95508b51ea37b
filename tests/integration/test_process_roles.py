"""One process per role, as `make run` and compose run them: every HTTP API answers from gunicorn, and
balance's read API and its projector live and die apart (killing one leaves the other serving)."""

from __future__ import annotations

import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from reciprocity.balance.db import make_engine

from tests.support.auth import BALANCE_TOKEN, bearer
from tests.support.balance_stack import caught_up
from tests.support.services import ServiceProcess, wait_for, worker
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.kafka


def record(stack: Stack, giver: str, receiver: str, minutes: int) -> None:
    stack.command("POST", "/v1/exchanges", {
        "giver": giver, "receiver": receiver, "kind": "help", "minutes": minutes, "note": "",
        "occurred_on": datetime.now(UTC).date().isoformat(), "recorded_by": giver})


def pending_given(balance_url: str, member_id: str) -> int | None:
    answer = requests.get(f"{balance_url}/v1/members/{member_id}/summary", timeout=10, headers=bearer(BALANCE_TOKEN))
    return answer.json()["given"]["pending_minutes"] if answer.status_code == 200 else None


def server_of(url: str) -> str:
    return requests.head(url + "/health", timeout=10).headers.get("Server", "")


def test_every_api_is_served_by_gunicorn_and_balance_api_and_projector_outlive_each_other(
        kafka_bootstrap: str, tmp_path: Path) -> None:
    with running_stack(kafka_bootstrap, tmp_path) as stack:
        assert stack.projector is not None
        notify_env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TOPIC_PREFIX": stack.prefix,
                      "DATABASE_URL": f"sqlite:///{tmp_path}/notify.db"}
        with ServiceProcess("reciprocity.notify.app", env=notify_env, log_dir=tmp_path) as notify:
            servers = {name: server_of(url) for name, url in (
                ("ledger", stack.ledger.url), ("balance", stack.balance.url), ("notify", notify.url),
                ("web", stack.web.url))}
        assert servers == dict.fromkeys(servers, "gunicorn"), servers

        circle, giver, receiver = (f"{what}-{uuid.uuid4().hex[:8]}" for what in ("c", "g", "r"))
        stack.circle(circle, "Roles")
        stack.member(giver, "Gia Ver", [circle])
        stack.member(receiver, "Ray Seever", [circle])
        stack.wait_for_directory([giver, receiver])

        # The projector dies: the read API keeps answering (what was projected), healthy.
        stack.projector.kill(signal.SIGKILL)
        record(stack, giver, receiver, 45)
        health = requests.get(stack.balance.url + "/health", timeout=10)
        assert health.status_code == 200, health.text
        assert pending_given(stack.balance.url, giver) == 0

        # A new projector picks up where the stored offsets say; the same API shows it.
        with worker("reciprocity.balance.worker", "projector", env=stack.projector.env, log_dir=tmp_path,
                    startup_timeout_s=120) as projector:
            wait_for(lambda: pending_given(stack.balance.url, giver) == 45, 60, what="the exchange projected")

            # The read API dies: the projector keeps projecting (and says it is healthy).
            stack.balance.kill(signal.SIGKILL)
            record(stack, giver, receiver, 30)
            engine = make_engine(stack.projector.env["DATABASE_URL"], immediate=False)
            try:
                wait_for(lambda: caught_up(engine, kafka_bootstrap, stack.prefix), 60,
                         what="the projector applying the exchange recorded while the API was down")
            finally:
                engine.dispose()
            probe: Any = requests.get(projector.url + "/health", timeout=10)
            assert probe.status_code == 200 and probe.json()["role"] == "balance-projector", probe.text

            with ServiceProcess("reciprocity.balance.app", env=stack.balance.env, log_dir=tmp_path) as api:
                assert pending_given(api.url, giver) == 75


def test_sigterm_stops_an_api_and_a_worker_cleanly(kafka_bootstrap: str, tmp_path: Path) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TOPIC_PREFIX": f"t.roles.{uuid.uuid4().hex[:8]}.",
           "DATABASE_URL": f"sqlite:///{tmp_path}/balance.db", "HTTP_WORKERS": "2"}
    with ServiceProcess("reciprocity.balance.app", env=env, log_dir=tmp_path) as api, \
            worker("reciprocity.balance.worker", "projector", env=env, log_dir=tmp_path) as projector:
        for process in (api, projector):
            assert process.proc is not None
            process.proc.terminate()
            assert process.proc.wait(timeout=30) == 0, process.log_tail()
    assert "Shutting down: Master" in api.log_path.read_text()
    assert "stopping on signal 15" in projector.log_path.read_text()
