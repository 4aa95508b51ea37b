"""The operator commands around balance: replay (blue/green while the service runs), status, dlq list and
redrive, export."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from reciprocity.cli.main import main as cli
from reciprocity.contracts.topics import EXCHANGES
from reciprocity.messaging.event_log import EventLog, Outgoing

from tests.support.balance_stack import InProcessBalance, make_topics
from tests.support.events import Exchange, append, circle, member
from tests.support.services import wait_for

pytestmark = pytest.mark.kafka


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = cli(list(argv))
    return code, capsys.readouterr().out


def test_replay_status_dlq_and_export(kafka_bootstrap: str, unique_id: str, tmp_path, monkeypatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    prefix = f"t{unique_id}."
    url = f"sqlite:///{tmp_path}/balance.db"
    make_topics(kafka_bootstrap, prefix)
    for name, value in {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TOPIC_PREFIX": prefix, "DATABASE_URL": url,
                        "NOTIFY_DATABASE_URL": ""}.items():
        monkeypatch.setenv(name, value)
    log = EventLog(kafka_bootstrap, client_id="test-ledger", topic_prefix=prefix)
    today = datetime.now(UTC).date()
    xs = [Exchange("ann", "bob", 30 + i, today - timedelta(days=i), "help", giver_circles=["core"],
                   receiver_circles=["core"]) for i in range(6)]
    try:
        with InProcessBalance(kafka_bootstrap, prefix, url) as balance:
            append(log, [circle("core"), member("ann", ["core"]), member("bob", ["core"])])
            append(log, [x.recorded() for x in xs])
            append(log, [x.acknowledged() for x in xs[:4]])
            log.append([Outgoing(EXCHANGES.name, b"x-poison", b'{"type": "ExchangeTeleported"}')])
            balance.wait_caught_up()
            before = balance.get("/v1/members/ann/summary")

            code, out = run(capsys, "replay", "balance", "--quiet")
            assert code == 0 and out.strip() == "2"
            assert balance.get("/v1/projection/status")["generation"] == 2
            assert balance.get("/v1/members/ann/summary") == before

            code, out = run(capsys, "status", "--json", "--notify-database-url", f"sqlite:///{tmp_path}/none.db",
                            "--probe", "balance=http://127.0.0.1:9", "--probe", "notify=http://127.0.0.1:9")
            assert code == 0
            report = json.loads(out)
            # The parked record, with why; no service answers there: said, and nothing is stopped.
            (parked,) = report["dead_letters"]
            assert parked["source_topic"] == "ledger.exchanges" and parked["error"].startswith("invalid envelope")
            assert report["stopped"] == [] and report["replays"] == []
            assert all(s["error"].startswith("not reachable") for s in report["services"])
            topics = {t["topic"]: t for t in report["topics"]}
            assert topics["ledger.exchanges"]["partitions"] == 8 and topics["ledger.exchanges"]["records"] == 11
            assert topics["ledger.exchanges.dlq"]["records"] == 1
            (active,) = [p for p in report["projections"] if "generation 2, active" in p["projection"]]
            assert active["lag"] == 0
            notify = [p for p in report["projections"] if p["projection"] == "notify"]
            assert notify and "error" in notify[0]  # no notify database there: said, not fatal

            code, out = run(capsys, "dlq", "list", "ledger.exchanges", "--json")
            (letter,) = json.loads(out)
            assert letter["error"].startswith("invalid envelope") and letter["source_topic"] == "ledger.exchanges"
            assert letter["redriven_to"] is None
            code, out = run(capsys, "dlq", "redrive", "ledger.exchanges", "--offset", str(letter["offset"]))
            assert code == 0 and out.strip() == "1"
            # Re-read by the consumer from the source topic (still unknown here, so dead-lettered again).
            wait_for(lambda: balance.service.consumer.health.dead_lettered >= 2, 30, what="the redriven record re-read")
            code, out = run(capsys, "dlq", "list", "--json")
            letters = json.loads(out)
            assert letters[0]["redriven_to"].startswith("ledger.exchanges[") and len(letters) == 2
            code, out = run(capsys, "dlq", "redrive", "ledger.exchanges", "--offset", str(letter["offset"]))
            assert out.strip() == "0"  # already redriven: not again

            code, out = run(capsys, "export", "exchanges", "--csv")
            rows = list(csv.DictReader(io.StringIO(out)))
            assert code == 0 and len(rows) == 6
            assert sorted(r["status"] for r in rows) == ["acknowledged"] * 4 + ["recorded"] * 2
            code, out = run(capsys, "export", "balances", "--csv", "--window", "28d")
            by_member = {r["member_id"]: r for r in csv.DictReader(io.StringIO(out))}
            assert int(by_member["ann"]["given_minutes"]) == before["given"]["minutes"] == 30 + 31 + 32 + 33
            assert int(by_member["bob"]["pending_received_minutes"]) == 34 + 35
            assert by_member["ann"]["reciprocity_index"] == "0.0"
    finally:
        log.close()


def test_what_the_live_service_projected_during_a_replay_is_served_after_the_switch(
        kafka_bootstrap: str, unique_id: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from reciprocity.balance.replay import replay

    prefix = f"t{unique_id}."
    make_topics(kafka_bootstrap, prefix)
    log = EventLog(kafka_bootstrap, client_id="test-ledger", topic_prefix=prefix)
    today = datetime.now(UTC).date()
    early = [Exchange("ann", "bob", 30, today - timedelta(days=i), "help", giver_circles=["core"],
                      receiver_circles=["core"]) for i in range(4)]
    late = Exchange("bob", "ann", 45, today, "care", giver_circles=["core"], receiver_circles=["core"])

    def ann_receives() -> int:
        return balance.get("/v1/members/ann/summary")["received"]["pending_minutes"]

    try:
        with InProcessBalance(kafka_bootstrap, prefix, f"sqlite:///{tmp_path}/balance.db") as balance:
            append(log, [circle("core"), member("ann", ["core"]), member("bob", ["core"])])
            append(log, [x.recorded() for x in early])
            balance.wait_caught_up()
            assert ann_receives() == 0

            def meanwhile(done: int, total: int) -> None:  # the replay's progress: it has begun reading
                if done < total and ann_receives() == 0:
                    append(log, [late.recorded()])  # past the end offsets the replay took: live only
                    wait_for(lambda: ann_receives() == 45, 30, what="the live generation to project it")

            result = replay(balance.engine, kafka_bootstrap, topic_prefix=prefix, batch_size=2, progress=meanwhile)
            assert result.generation == 2 and result.events == 7  # the late exchange is not in the replay
            # Its partition stays quiet, yet the live service finds the new generation lacks it.
            wait_for(lambda: ann_receives() == 45, 30, what="the late exchange served from the new generation")
            assert balance.get("/v1/projection/status")["generation"] == 2
    finally:
        log.close()
