"""No single event stops the read side (issue 10): events an older producer wrote before a bound existed
are applied (cleaned on read) or parked in `<topic>.dlq`; the events after them on the same partition are
projected, /health stays 200, `dlq list` and `status` show what was parked, and a replay over that log
exits 0 and switches. A replay that fails says so in one line and leaves no generation building."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from reciprocity.balance import tables as t
from reciprocity.balance.app import create_app
from reciprocity.balance.db import make_engine, migrate
from reciprocity.balance.generations import ReplayRunning, list_generations, replay_lock, replay_running, start_building
from reciprocity.balance.projection import BalanceProjection
from reciprocity.balance.settings import BalanceSettings
from reciprocity.cli.main import main as cli
from reciprocity.contracts.events import ExchangeRecorded
from reciprocity.contracts.topics import DIRECTORY, EXCHANGES
from reciprocity.messaging.consumer import Delivered, OffsetRange
from reciprocity.messaging.event_log import EventLog, Outgoing
from reciprocity.messaging.inspect import read_all
from reciprocity.messaging.poison import apply_isolating_poison, describe_failure
from werkzeug.serving import make_server

from devstack.ports import free_port
from tests.support.balance_stack import InProcessBalance, make_topics
from tests.support.events import Exchange, Feeder, append, circle, envelope, member
from tests.support.services import wait_for

pytestmark = pytest.mark.kafka


@pytest.fixture
def stack(kafka_bootstrap: str, unique_id: str, db_url: str, monkeypatch) -> Iterator[tuple[str, EventLog]]:  # type: ignore[no-untyped-def]
    prefix = f"t.poison.{unique_id}."
    make_topics(kafka_bootstrap, prefix)
    for name, value in {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TOPIC_PREFIX": prefix,
                        "DATABASE_URL": db_url}.items():
        monkeypatch.setenv(name, value)
    log = EventLog(kafka_bootstrap, client_id="an-old-ledger", topic_prefix=prefix)
    yield prefix, log
    log.close()


def raw(event_type: str, key: str, payload: dict, version: int = 1) -> bytes:
    """An event as an older producer wrote it, before the bounds it breaks existed."""
    return json.dumps({"event_id": str(uuid.uuid4()), "type": event_type, "version": version,
                       "occurred_at": datetime.now(UTC).isoformat(), "producer": "ledger-0.9", "key": key,
                       "payload": payload}).encode()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_out_of_bound_directory_events_are_applied_or_parked_and_the_partition_goes_on(
    kafka_bootstrap: str, stack: tuple[str, EventLog], db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix, log = stack
    with InProcessBalance(kafka_bootstrap, prefix, db_url) as balance:
        append(log, [circle("core"), member("ann"), member("bob")])
        # The pause that once stopped ledger.directory for good, and a capacity beyond any week: the same key
        # as what follows, so the same partition, in this order.
        paused_forever, too_many_hours, _ = log.append([
            Outgoing(DIRECTORY.name, b"ann", raw("AvailabilityChanged", "ann", {
                "member_id": "ann", "status": "paused", "paused_until": "9999-12-31"})),
            Outgoing(DIRECTORY.name, b"ann", raw("CapacityDeclared", "ann", {"member_id": "ann",
                                                                             "weekly_hours": 10_000})),
            Outgoing(DIRECTORY.name, b"ann", raw("MemberJoinedCircle", "ann", {"member_id": "ann",
                                                                               "circle_id": "core"})),
        ])
        def joined() -> dict | None:
            answer = balance.client.get("/v1/directory/members/ann")
            return answer.get_json() if answer.status_code == 200 and answer.get_json()["circles"] == ["core"] else None

        ann = wait_for(joined, 120, what="the event after the poison projected")
        assert (ann["status"], ann["paused_until"], ann["weekly_hours"]) == ("paused", None, None)  # until resumed
        health = balance.client.get("/health")
        assert health.status_code == 200, health.get_json()
        assert health.get_json()["consumer"] == {"stopped_partitions": {}, "parked_since_start": 1}

        code, out, _ = run(capsys, "dlq", "list", "ledger.directory", "--json")
        (letter,) = json.loads(out)
        assert code == 0 and letter["source_offset"] == str(too_many_hours.offset)
        assert letter["error"].startswith("invalid CapacityDeclared v1: weekly_hours")
        assert paused_forever.partition == too_many_hours.partition

        # A replay over that log: the same result, nothing parked twice, switched.
        before = balance.get("/v1/directory/members/ann")
        code, out, err = run(capsys, "replay", "balance", "--quiet")
        assert code == 0, err
        assert out.strip() == "2" and "1 parked in the DLQs" in err
        assert balance.get("/v1/projection/status")["generation"] == 2
        assert balance.get("/v1/directory/members/ann") == before
        assert len(list(read_all(kafka_bootstrap, [DIRECTORY.dlq], topic_prefix=prefix))) == 1


def test_a_nul_in_a_note_neither_stops_postgresql_nor_is_lost(
    kafka_bootstrap: str, unique_id: str, postgres_url: str, monkeypatch, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    prefix = f"t.poisonnul.{unique_id}."
    make_topics(kafka_bootstrap, prefix)
    for name, value in {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TOPIC_PREFIX": prefix,
                        "DATABASE_URL": postgres_url}.items():
        monkeypatch.setenv(name, value)
    log = EventLog(kafka_bootstrap, client_id="an-old-ledger", topic_prefix=prefix)
    x = Exchange("ann", "bob", 40, date.today(), exchange_id=f"x-{uuid.uuid4().hex[:16]}")
    recorded = x.recorded().model_dump(mode="json")
    try:
        with InProcessBalance(kafka_bootstrap, prefix, postgres_url) as balance:
            append(log, [member("ann"), member("bob")])
            log.append([Outgoing(EXCHANGES.name, x.id.encode(), raw("ExchangeRecorded", x.id, {
                **recorded, "note": "before\x00after"}, version=2))])
            append(log, [x.acknowledged(thanks="thanks")])  # the same key: after it, on its partition
            def acknowledged() -> dict | None:
                answer = balance.client.get(f"/v1/exchanges/{x.id}")
                return answer.get_json() if answer.status_code == 200 and answer.get_json()["status"] == (
                    "acknowledged") else None

            found = wait_for(acknowledged, 120, what="the exchange after the NUL projected")
            assert found["note"] == "before\ufffdafter"  # cleaned on read: counted, and PostgreSQL can keep it
            assert balance.get("/v1/members/bob/summary")["received"]["minutes"] == 40

            # A NUL where no text is cleaned (an exchange id, which an old ledger took from its caller):
            # PostgreSQL refuses it, the projection parks it, and the next event of its partition counts.
            key, after = b"x-nul-partition", Exchange("bob", "ann", 25, date.today())
            (nul,) = log.append([Outgoing(EXCHANGES.name, key, raw("ExchangeRecorded", "x-nul", {
                **recorded, "note": "", "exchange_id": "x-nul\x00id"}, version=2))])
            log.append([Outgoing(EXCHANGES.name, key, envelope(after.recorded()).model_dump_json().encode())])
            wait_for(lambda: balance.client.get(f"/v1/exchanges/{after.id}").status_code == 200, 120,
                     what="the exchange after the NUL id projected")
            assert balance.client.get("/health").status_code == 200
            code, out, _ = run(capsys, "dlq", "list", "ledger.exchanges", "--json")
            (letter,) = json.loads(out)
            assert (letter["source_partition"], letter["source_offset"]) == (str(nul.partition), str(nul.offset))
            # The NUL byte, named by the server.
            assert letter["error"].startswith("projection failed:") and "0x00" in letter["error"]

            code, out, err = run(capsys, "replay", "balance", "--quiet")
            assert code == 0 and out.strip() == "2", err
            assert balance.get("/v1/projection/status")["generation"] == 2
            assert balance.get(f"/v1/exchanges/{after.id}")["minutes"] == 25
            assert len(list(read_all(kafka_bootstrap, [EXCHANGES.dlq], topic_prefix=prefix))) == 1
    finally:
        log.close()


def test_a_value_postgresql_refuses_is_parked_by_the_projection_and_the_next_event_applied(postgres_url: str) -> None:
    """Beneath the contracts: should a value they let through be refused by the database itself, the event
    is parked (a DataError is the event's fault), not retried for ever."""
    engine = make_engine(postgres_url)
    migrate(engine)
    projection = BalanceProjection(engine)
    feeder = Feeder(projection, partition=0)
    feeder.feed([member("nul-ann"), member("nul-bob")])
    good = Exchange("nul-ann", "nul-bob", 15, date.today())
    bad = Exchange("nul-ann", "nul-bob", 20, date.today())
    # model_construct: no validation, as if a contract had a hole.
    poison = ExchangeRecorded.model_construct(**{**bad.recorded().__dict__, "exchange_id": "x-nul\x00id"})
    events = [Delivered(EXCHANGES.name, 0, offset, envelope(e), e) for offset, e in
              enumerate([poison, good.recorded()], start=feeder.next.get((EXCHANGES.name, 0), 0))]
    first = events[0].offset
    parked: list[tuple[int, str]] = []
    projection.load_offsets([(EXCHANGES.name, 0)])
    count = apply_isolating_poison(projection, (EXCHANGES.name, 0), events, OffsetRange(first, first + 2),
                                   lambda e, err: parked.append((e.offset, describe_failure(err))))
    assert count == 1 and parked[0][0] == first and "0x00" in parked[0][1], parked  # the NUL byte, named by the server
    with engine.connect() as conn:
        ids = {r.exchange_id for r in conn.execute(sa.select(t.exchanges.c.exchange_id))}
    assert good.id in ids and bad.id not in ids
    engine.dispose()


def test_a_replay_that_fails_says_why_in_one_line_and_leaves_no_generation_building(
    kafka_bootstrap: str, unique_id: str, tmp_path  # type: ignore[no-untyped-def]
) -> None:
    """Run as the operator would, in a process of its own, against a database that breaks halfway: a table
    the projection writes is gone (as after a botched manual fix), so the replay fails once it reaches the
    first exchange, after its generation was created and partly filled."""
    prefix = f"t.poisonfail.{unique_id}."
    make_topics(kafka_bootstrap, prefix)
    url = f"sqlite:///{tmp_path}/balance.db"
    engine = make_engine(url)
    migrate(engine)
    log = EventLog(kafka_bootstrap, client_id="test", topic_prefix=prefix)
    x = Exchange("ann", "bob", 30, date.today() - timedelta(days=1), giver_circles=["core"], receiver_circles=["core"])
    append(log, [circle("core"), member("ann", ["core"]), member("bob", ["core"])])
    append(log, [x.recorded()])
    log.close()
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE balance_circle_day")
    env_vars = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TOPIC_PREFIX": prefix,
                "DATABASE_URL": url}
    # Again with the progress bar: the same line (the second one fails already clearing the first one's rows).
    for quiet in (["--quiet"], []):
        done = subprocess.run([sys.executable, "-m", "reciprocity.cli.main", "replay", "balance", *quiet],
                              env=env_vars, capture_output=True, text=True, timeout=300)
        assert done.returncode == 1, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
        assert lines[0] == ("reciprocity replay: failed: OperationalError: no such table: balance_circle_day; "
                            "nothing switched; the active generation serves on"), lines
        with engine.connect() as conn:
            generations = {g["id"]: g["status"] for g in list_generations(conn)}
            leftovers = conn.execute(sa.select(sa.func.count()).select_from(t.members)
                                     .where(t.members.c.generation == 2)).scalar()
        assert generations == {1: "active", 2: "failed"} and leftovers == 0
    engine.dispose()


def test_export_into_a_closed_pipe_ends_quietly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`reciprocity export exchanges --csv | head -2` ended in a BrokenPipeError traceback."""
    url = f"sqlite:///{tmp_path}/balance.db"
    engine = make_engine(url)
    migrate(engine)
    feeder = Feeder(BalanceProjection(engine), partition=0)
    feeder.feed([member("ann"), member("bob")])
    feeder.feed([Exchange("ann", "bob", 1 + i % 60, date.today()).recorded() for i in range(3000)])
    engine.dispose()
    done = subprocess.run(f"{sys.executable} -m reciprocity.cli.main export exchanges --csv | head -2",
                          shell=True, env={**os.environ, "DATABASE_URL": url}, capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.count("\n") == 2 and done.stdout.startswith("exchange_id,")
    assert done.stderr == ""


def test_status_names_a_stopped_partition_and_exits_non_zero(
    kafka_bootstrap: str, unique_id: str, tmp_path, monkeypatch, capsys: pytest.CaptureFixture[str]  # type: ignore[no-untyped-def]
) -> None:
    prefix = f"t.poisonstatus.{unique_id}."
    make_topics(kafka_bootstrap, prefix)
    url = f"sqlite:///{tmp_path}/balance.db"
    for name, value in {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TOPIC_PREFIX": prefix,
                        "DATABASE_URL": url}.items():
        monkeypatch.setenv(name, value)
    with InProcessBalance(kafka_bootstrap, prefix, url) as balance:
        port = free_port()
        server = make_server("127.0.0.1", port, balance.app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            balance.service.consumer.health.failed_partitions["ledger.exchanges[3]"] = (
                "OperationalError('database is locked')")  # as the loop records an infrastructure failure
            where = ["--probe", f"balance-projector=http://127.0.0.1:{port}", "--probe",
                     "notify-sender=http://127.0.0.1:9", "--notify-database-url", f"sqlite:///{tmp_path}/n.db"]
            code, out, _ = run(capsys, "status", "--json", *where)
            report = json.loads(out)
            assert code == 1
            assert report["stopped"] == [{"service": "balance-projector", "partition": "ledger.exchanges[3]",
                                          "reason": "OperationalError('database is locked')"}]
            code, out, _ = run(capsys, "status", *where)
            assert code == 1
            assert "stopped balance-projector ledger.exchanges[3]: OperationalError('database is locked')" in out
            balance.service.consumer.health.failed_partitions.clear()
            code, out, _ = run(capsys, "status", "--json", *where)
            assert code == 0 and json.loads(out)["stopped"] == []
        finally:
            server.shutdown()


def test_a_generation_no_live_replay_builds_is_shown_failed_not_building(db_url: str) -> None:
    """A replay killed outright (SIGKILL, the OOM killer) cannot mark its generation: the lock it held while
    alive tells a live replay from a dead one, on SQLite (a file lock) and PostgreSQL (an advisory lock)."""
    engine = make_engine(db_url)
    migrate(engine)
    app = create_app(BalanceSettings(database_url=db_url, kafka_bootstrap_servers="127.0.0.1:9"), engine=engine,
                     end_offsets_fn=dict, dead_letters_fn=list)
    client = app.test_client()
    token = {"Authorization": f"Bearer {BalanceSettings().balance_token}"}

    def status() -> dict:
        answer = client.get("/v1/projection/status", headers=token)
        assert answer.status_code == 200
        return answer.get_json()

    with replay_lock(engine):  # a replay alive and building
        with engine.begin() as conn:
            gen = start_building(conn)
        assert replay_running(engine)
        with pytest.raises(ReplayRunning), replay_lock(engine):  # and no second one meanwhile
            pass
        assert status()["building"]["generation"] == gen and status()["failed_replay"] is None
    # Its process is gone (the lock with it), its generation still says `building`.
    assert not replay_running(engine)
    found = status()
    assert found["building"] is None
    assert found["failed_replay"]["generation"] == gen and found["failed_replay"]["interrupted"] is True
    engine.dispose()
