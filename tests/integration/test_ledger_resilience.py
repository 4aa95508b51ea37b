"""The ledger when Kafka goes away and when the ledger itself restarts: nothing appended by a failed
request, and a fresh process knows everything the old one did (state and first answers)."""

from __future__ import annotations

import signal
import uuid
from datetime import date

import pytest
import requests
from reciprocity.contracts.commands import today_utc

from devstack.local_kafka import LocalKafka
from devstack.ports import free_port
from tests.support.ledger import TOKEN, in_process_ledger, new_prefix, read_events
from tests.support.services import ServiceProcess, wait_for

pytestmark = pytest.mark.kafka


def _exchange(giver: str, receiver: str) -> dict[str, object]:
    return {"giver": giver, "receiver": receiver, "kind": "help", "minutes": 30, "occurred_on": str(today_utc()),
            "recorded_by": giver, "note": "moved the boxes"}


def test_kafka_down_answers_503_and_appends_nothing(tmp_path) -> None:
    kafka = LocalKafka(tmp_path / "kafka", port=free_port(), controller_port=free_port())
    kafka.start()
    try:
        # A short Kafka timeout, so the request made while Kafka is down answers soon. While Kafka is up, a
        # busy machine can still outlast it (InitProducerId of a fresh transactional producer took longer
        # than 2 s once in CI): commands are sent again, safely, until Kafka answered in time.
        with in_process_ledger(kafka.bootstrap_servers, kafka_timeout_s=2.0, retry_after_s=7) as ledger:
            ledger.ok_when_kafka_answers("POST", "/v1/circles", {"id": "ops", "name": "Ops"})
            for member in ("ada", "bob"):
                ledger.ok_when_kafka_answers("POST", "/v1/members", {"id": member, "name": member.title(),
                                                                     "email": f"{member}@example.org",
                                                                     "circles": ["ops"]})
            before = ledger.count()

            kafka.stop()
            answer = ledger.post("/v1/exchanges", _exchange("ada", "bob"), key="while-down")
            assert answer.status_code == 503
            assert answer.headers["Retry-After"] == "7"
            assert set(answer.get_json()) == {"error"} and "nothing was recorded" in answer.get_json()["error"]
            health = ledger.get("/health", token=None)
            assert health.status_code == 503
            assert health.get_json()["status"] == "unavailable"
            assert ledger.get("/v1/stats").status_code == 503  # reads wait for a trusted state too

            kafka.start()
            wait_for(lambda: ledger.get("/v1/stats").status_code == 200, timeout_s=60, what="the ledger to reload")
            assert ledger.count() == before, "the request made while Kafka was down appended something"
            assert ledger.get("/health", token=None).status_code == 200

            # The retry now lands, exactly once (repeated while the restarted broker is slow to answer).
            first = ledger.when_kafka_answers("POST", "/v1/exchanges", _exchange("ada", "bob"), key="while-down")
            again = ledger.post("/v1/exchanges", _exchange("ada", "bob"), key="while-down")
            assert first.status_code == again.status_code == 201 and first.get_json() == again.get_json()
            # A committed transaction's markers reach the partitions just after the commit returns, so a
            # read-committed reader may see the event a moment later: wait for it, then it must be the only one.
            wait_for(lambda: ledger.count() >= before + 1, timeout_s=60, interval_s=0.5, what="the retry's event")
            assert ledger.count() == before + 1
    finally:
        kafka.stop()


def test_health_is_503_until_the_state_is_loaded(tmp_path) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    env = {"KAFKA_BOOTSTRAP_SERVERS": nowhere, "TOPIC_PREFIX": new_prefix(), "LEDGER_TOKEN": TOKEN,
           "KAFKA_TIMEOUT_S": "1"}
    with ServiceProcess("reciprocity.ledger.app", env=env, log_dir=tmp_path, ready_status=(503,)) as ledger:
        health = requests.get(ledger.url + "/health", timeout=10)
        assert health.status_code == 503
        assert "not read its state" in health.json()["checks"]["state"]
        answer = requests.post(ledger.url + "/v1/circles", json={"id": "ops", "name": "Ops"},
                               headers={"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": "ops"}, timeout=30)
        assert answer.status_code == 503 and answer.headers["Retry-After"]
        # Open endpoints still answer.
        assert requests.get(ledger.url + "/openapi.json", timeout=10).status_code == 200
        ledger.kill(signal.SIGKILL)  # its loader is still waiting on the absent broker: no need to wait for it


def test_a_restarted_ledger_keeps_state_and_first_answers(kafka_bootstrap: str, tmp_path) -> None:
    prefix = new_prefix("restart")
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TOPIC_PREFIX": prefix, "LEDGER_TOKEN": TOKEN}
    auth = {"Authorization": f"Bearer {TOKEN}"}
    u = uuid.uuid4().hex[:6]
    ada, bob = f"ada-{u}", f"bob-{u}"

    def send(url: str, method: str, path: str, body: dict, key: str) -> requests.Response:
        return requests.request(method, url + path, json=body, headers={**auth, "Idempotency-Key": key}, timeout=30)

    commands = [
        ("POST", "/v1/circles", {"id": f"care-{u}", "name": "Care"}, "c1"),
        ("POST", "/v1/members", {"id": ada, "name": "Ada", "email": f"{ada}@example.org", "circles": [f"care-{u}"]},
         "m1"),
        ("POST", "/v1/members", {"id": bob, "name": "Bob", "email": f"{bob}@example.org", "circles": [f"care-{u}"]},
         "m2"),
        ("POST", "/v1/exchanges", _exchange(ada, bob), "x1"),
    ]
    first_answers = []
    with ServiceProcess("reciprocity.ledger.app", env=env, log_dir=tmp_path) as first:
        for method, path, body, key in commands:
            answer = send(first.url, method, path, body, key)
            assert answer.status_code == 201, answer.text
            first_answers.append(answer.json())
        exchange_id = first_answers[-1]["id"]
        dispute = ("POST", f"/v1/exchanges/{exchange_id}/dispute", {"by": bob, "reason": "it was someone else"}, "d1")
        disputed = send(first.url, *dispute)
        assert disputed.status_code == 201
        first_answers.append(disputed.json())
        commands.append(dispute)
        first.kill(signal.SIGKILL)  # no goodbye: the next process has only the topics
    appended = len(read_events(kafka_bootstrap, prefix))
    assert appended == 5

    with ServiceProcess("reciprocity.ledger.app", env=env, log_dir=tmp_path) as second:
        ack = requests.post(second.url + f"/v1/exchanges/{exchange_id}/acknowledge", json={"by": bob},
                            headers={**auth, "Idempotency-Key": "a1"}, timeout=30)
        assert ack.status_code == 409 and "already disputed" in ack.json()["error"]
        # Every retry gets the first answer, and nothing is appended twice.
        for (method, path, body, key), answer in zip(commands, first_answers, strict=True):
            retry = send(second.url, method, path, body, key)
            assert (retry.status_code, retry.json()) == (201, answer), path
        reused = send(second.url, "POST", "/v1/exchanges", {**_exchange(ada, bob), "minutes": 31}, "x1")
        assert reused.status_code == 422
        view = requests.get(second.url + f"/v1/exchanges/{exchange_id}", headers=auth, timeout=10).json()
        assert (view["status"], view["settled_by"], date.fromisoformat(view["occurred_on"])) == (
            "disputed", bob, today_utc())
    assert len(read_events(kafka_bootstrap, prefix)) == appended
