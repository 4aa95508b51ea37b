"""Signals end to end: a member who mentors 5 hours in three weeks and receives nothing is flagged once;
a blue/green replay and a fresh projection raise nothing new; acknowledged reciprocation clears it once."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from reciprocity.balance.generations import active_generation
from reciprocity.balance.replay import replay
from reciprocity.contracts.envelope import decode
from reciprocity.contracts.ids import signal_event_id
from reciprocity.contracts.topics import SIGNALS
from reciprocity.messaging.event_log import EventLog
from reciprocity.messaging.inspect import read_all

from tests.support.balance_stack import InProcessBalance, make_topics
from tests.support.events import Exchange, append, circle, member
from tests.support.services import wait_for

pytestmark = pytest.mark.kafka


@pytest.fixture(params=["sqlite", "postgres"])
def db_urls(request: pytest.FixtureRequest, tmp_path, postgres_server, unique_id):  # type: ignore[no-untyped-def]
    """Two databases: the service's and a fresh one for a second, from-scratch projection."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/a.db", f"sqlite:///{tmp_path}/b.db"
    return postgres_server.create_database(f"a_{unique_id}"), postgres_server.create_database(f"b_{unique_id}")


def signal_events(bootstrap: str, prefix: str) -> list[tuple[str, str, dict]]:
    found = []
    for record in read_all(bootstrap, [SIGNALS.name], topic_prefix=prefix):
        envelope, event = decode(record.value)
        found.append((str(envelope.event_id), envelope.type, event.model_dump(mode="json")))
    return found


def distinct(events: list[tuple[str, str, dict]]) -> Counter[str]:
    return Counter(kind for _, kind in {(eid, kind) for eid, kind, _ in events})


def test_overextension_raised_once_survives_replays_and_clears_once(kafka_bootstrap: str, unique_id: str,
                                                                       db_urls: tuple[str, str]) -> None:
    prefix = f"t{unique_id}."
    make_topics(kafka_bootstrap, prefix)
    log = EventLog(kafka_bootstrap, client_id="test-ledger", topic_prefix=prefix)
    today = datetime.now(UTC).date()
    core = ["core"]
    people = ["mia", "ned", "ola", "pat", "quinn"]
    mentoring = [Exchange("mia", ["ned", "ola"][i % 2], 60, today - timedelta(days=d), "mentoring",
                          giver_circles=core, receiver_circles=core) for i, d in enumerate((20, 15, 10, 5, 1))]
    try:
        with InProcessBalance(kafka_bootstrap, prefix, db_urls[0], today=today) as balance:
            append(log, [circle("core"), *[member(p, core) for p in people]])
            append(log, [x.recorded() for x in mentoring])
            append(log, [x.acknowledged() for x in mentoring[:2]])  # settled or pending: both count
            balance.wait_caught_up()
            events = wait_for(lambda: (lambda e: e if e else None)(signal_events(kafka_bootstrap, prefix)), 30,
                              what="a signal on balance.signals")
            assert distinct(events) == Counter({"MemberOverextended": 1})
            raised_id, _, raised = events[0]
            # Five hours in all; the line (240 min) may be crossed by the fourth or the fifth exchange,
            # depending on which partitions one poll brings together.
            assert raised["member_id"] == "mia" and raised["given_minutes"] in (240, 300)
            assert raised["received_minutes"] == 0
            assert raised["reason"] == "ratio" and raised["circles"] == core
            window_start = (today - timedelta(days=27)).isoformat()
            assert raised["window_start"] == window_start
            assert raised_id == str(signal_event_id("mia", "overextended", window_start))
            listed = balance.get("/v1/signals?circle=core&active=true")["signals"]
            assert [(s["event_id"], s["type"], s["member_id"]) for s in listed] == [(raised_id, "MemberOverextended",
                                                                                     "mia")]
            assert listed[0]["details"]["given_minutes"] == raised["given_minutes"] and listed[0]["cleared_at"] is None
            assert balance.get("/v1/members/mia/summary")["given"]["pending_minutes"] + \
                balance.get("/v1/members/mia/summary")["given"]["minutes"] == 300

            # Blue/green replay while the service runs: same numbers, a new generation, no new signal.
            before = balance.get("/v1/members/mia/summary")
            result = replay(balance.engine, kafka_bootstrap, topic_prefix=prefix)
            assert result.generation == 2 and result.retired == 1 and result.events == 13
            with balance.engine.connect() as conn:
                assert active_generation(conn) == 2
            assert balance.get("/v1/members/mia/summary") == before
            assert balance.get("/v1/projection/status")["generation"] == 2
            with balance.engine.begin() as conn:
                assert balance.service.signals.sweep(conn, 2) == 0
            balance.service.publish()

            # Events after the switch land in the new generation (the service followed the switch).
            late = Exchange("pat", "quinn", 10, today, "care", giver_circles=core, receiver_circles=core)
            append(log, [late.recorded()])
            wait_for(lambda: balance.client.get(f"/v1/exchanges/{late.id}").status_code == 200, 30,
                     what="an event appended after the switch projected")

        # A projection from scratch into an empty database over the same log: state comes back from
        # balance.signals, so nothing is raised again.
        with InProcessBalance(kafka_bootstrap, prefix, db_urls[1], today=today) as fresh:
            fresh.wait_caught_up()
            with fresh.engine.begin() as conn:
                fresh.service.signals.sweep(conn, 1)
            fresh.service.publish()
            assert [s["event_id"] for s in fresh.get("/v1/signals?active=true")["signals"]] == [raised_id]
            assert fresh.get("/v1/members/mia/summary")["given"] == before["given"]
        assert distinct(signal_events(kafka_bootstrap, prefix)) == Counter({"MemberOverextended": 1})

        # Reciprocation, then acknowledged: 300 given / 160 received = 1.9 < 2 -> cleared, exactly once
        # (the policy counts pending exchanges too, so the recording clears it; the acknowledgement
        # changes nothing the policy sees and must not clear it again).
        with InProcessBalance(kafka_bootstrap, prefix, db_urls[0], today=today) as balance:
            back = [Exchange(p, "mia", 80, today - timedelta(days=2), "feedback", giver_circles=core,
                             receiver_circles=core) for p in ("ned", "ola")]
            append(log, [back[0].recorded()])
            balance.wait_caught_up()
            assert distinct(signal_events(kafka_bootstrap, prefix)) == Counter({"MemberOverextended": 1})  # 3.75
            append(log, [back[1].recorded()])
            append(log, [x.acknowledged("thank you") for x in back])
            balance.wait_caught_up()
            events = wait_for(lambda: (lambda e: e if len(distinct(e)) == 2 else None)(
                signal_events(kafka_bootstrap, prefix)), 30, what="SignalCleared")
            with balance.engine.begin() as conn:
                balance.service.signals.sweep(conn, 2)
            balance.service.publish()
            events = signal_events(kafka_bootstrap, prefix)
            assert distinct(events) == Counter({"MemberOverextended": 1, "SignalCleared": 1})
            cleared = next(p for _, kind, p in events if kind == "SignalCleared")
            assert cleared["raised_event_id"] == raised_id and cleared["signal_kind"] == "overextended"
            assert balance.get("/v1/signals?active=true")["signals"] == []
            history = balance.get("/v1/signals?member=mia")["signals"]
            assert len(history) == 1 and history[0]["active"] is False and history[0]["cleared_at"]
    finally:
        log.close()
