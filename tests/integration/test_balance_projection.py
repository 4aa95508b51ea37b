"""The balance projection end to end over a real broker, on SQLite and on PostgreSQL: lifecycle counts,
the read API, dead letters, a parked event whose partition goes on, and the schema the migrations create."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from reciprocity.balance.db import make_engine, migrate
from reciprocity.balance.replay import replay
from reciprocity.balance.tables import metadata
from reciprocity.contracts.envelope import encode
from reciprocity.contracts.events import ExchangeRecorded, MemberJoinedCircle, MemberLeftCircle
from reciprocity.contracts.topics import DIRECTORY, EXCHANGES
from reciprocity.messaging.event_log import EventLog, Outgoing
from reciprocity.messaging.inspect import read_all

from tests.support.balance_stack import InProcessBalance, make_topics
from tests.support.events import Exchange, append, circle, envelope, member
from tests.support.services import wait_for

pytestmark = pytest.mark.kafka


@pytest.fixture
def prefix(kafka_bootstrap: str, unique_id: str) -> str:
    p = f"t{unique_id}."
    make_topics(kafka_bootstrap, p)
    return p


@pytest.fixture
def log(kafka_bootstrap: str, prefix: str):  # type: ignore[no-untyped-def]
    event_log = EventLog(kafka_bootstrap, client_id="test-ledger", topic_prefix=prefix)
    yield event_log
    event_log.close()


def test_migrations_create_the_schema_the_code_uses(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    migrate(engine)  # idempotent
    with engine.connect() as conn:
        ours = {"include_name": lambda name, type_, _parent: type_ != "table" or (
            name.startswith("balance_") and name != "balance_alembic_version")}
        assert compare_metadata(MigrationContext.configure(conn, opts=ours), metadata) == []
        assert conn.execute(sa.text("SELECT version_num FROM balance_alembic_version")).scalar() == "0010"
    engine.dispose()


def test_lifecycle_counts_and_read_api(kafka_bootstrap: str, prefix: str, log: EventLog, db_url: str) -> None:
    core = ["core"]
    directory = [circle("core", "Core circle"), circle("ops")]
    directory += [member(m, core) for m in ("ann", "bob", "dan", "eve", "fay")] + [member("cid", ["ops"])]
    today = datetime.now(UTC).date()
    a = Exchange("ann", "bob", 60, today - timedelta(days=2), "mentoring", giver_circles=core, receiver_circles=core,
                 note="pairing on the release", shared=True)
    b = Exchange("ann", "bob", 30, today - timedelta(days=1), "help", giver_circles=core, receiver_circles=core)
    c = Exchange("bob", "ann", 45, today, "feedback", giver_circles=core, receiver_circles=core)
    d = Exchange("ann", "cid", 20, today, "care", giver_circles=core, receiver_circles=["ops"])
    with InProcessBalance(kafka_bootstrap, prefix, db_url) as balance:
        append(log, directory)
        append(log, [a.recorded(), b.recorded(), c.recorded(), d.recorded()])
        append(log, [a.acknowledged("thank you!", shared=True), c.disputed("it was 15 minutes"), d.withdrawn()])
        balance.wait_caught_up()

        ann = balance.get("/v1/members/ann/summary?window=28d")
        assert ann["window_days"] == 28 and ann["to"] == today.isoformat()
        assert ann["given"] == {"minutes": 60, "count": 1, "pending_minutes": 30, "pending_count": 1}
        assert ann["received"] == {"minutes": 0, "count": 0, "pending_minutes": 0, "pending_count": 0}
        assert ann["by_kind"]["mentoring"] == {"given_minutes": 60, "given_count": 1, "received_minutes": 0,
                                               "received_count": 0, "pending_given_minutes": 0,
                                               "pending_received_minutes": 0}
        assert ann["by_kind"]["help"]["pending_given_minutes"] == 30
        assert ann["by_kind"]["care"] == dict.fromkeys(ann["by_kind"]["care"], 0)  # withdrawn: nowhere
        assert ann["by_kind"]["feedback"]["received_minutes"] == 0  # disputed: nowhere
        assert set(ann["by_kind"]) == {"mentoring", "feedback", "help", "knowledge", "resource", "care"}
        assert ann["reciprocity_index"] == 0.0
        assert ann["capacity"] == {"weekly_hours": None, "given_last_7_days_minutes": 90, "used_fraction": None}

        bob = balance.get("/v1/members/bob/summary")
        assert bob["received"] == {"minutes": 60, "count": 1, "pending_minutes": 30, "pending_count": 1}
        assert bob["given"] == {"minutes": 0, "count": 0, "pending_minutes": 0, "pending_count": 0}
        cid = balance.get("/v1/members/cid/summary")
        assert cid["received"]["pending_minutes"] == 0 and cid["received"]["minutes"] == 0

        rel = balance.get("/v1/members/ann/relationships")["relationships"]
        assert [r["other"] for r in rel] == ["bob"]  # cid: only a withdrawn exchange
        assert rel[0]["given_minutes"] == 60 and rel[0]["given_count"] == 1 and rel[0]["received_minutes"] == 0
        assert rel[0]["other_name"] == "Bob" and rel[0]["last_exchange_on"] == b.facts["occurred_on"].isoformat()
        assert rel[0]["pending_given_minutes"] == 30 and rel[0]["pending_given_count"] == 1  # b, not acknowledged
        assert rel[0]["pending_received_minutes"] == 0 and rel[0]["pending_received_count"] == 0  # c: disputed
        assert rel[0]["pending_by_kind"]["help"] == {"given_minutes": 30, "received_minutes": 0}

        statuses = {x["exchange_id"]: x["status"] for x in balance.get("/v1/members/ann/exchanges")["exchanges"]}
        assert statuses == {a.id: "acknowledged", b.id: "recorded", c.id: "disputed", d.id: "withdrawn"}
        assert [x["exchange_id"] for x in balance.get("/v1/members/ann/exchanges?status=recorded")["exchanges"]] == [
            b.id]
        detail = balance.get(f"/v1/exchanges/{a.id}")
        assert detail["thanks"] == "thank you!" and detail["giver_name"] == "Ann" and detail["note"].startswith("pair")
        assert detail["shared_by_recorder"] and detail["shared_by_acknowledger"]
        assert balance.get(f"/v1/exchanges/{c.id}")["dispute_reason"] == "it was 15 minutes"
        assert [x["exchange_id"] for x in balance.get("/v1/appreciations")["appreciations"]] == [a.id]

        health = balance.get("/v1/circles/core/health?window=28d")
        assert health["private"] is False and health["member_count"] == 5 and health["name"] == "Core circle"
        assert health["participation_rate"] == 0.4  # ann and bob settled something
        assert health["gini"] == 0.8  # [60, 0, 0, 0, 0]
        assert health["mentoring_minutes"] == 60 and health["mentoring_count"] == 1
        assert health["cross_circle_breadth"] == 0.0 and health["mutual_ties"] == 0.0
        assert health["feedback_cycles"] == 0.0
        assert "flows" not in health and "ties" not in health  # the measures alone unless a picture is asked for
        pictured = balance.get("/v1/circles/core/health?window=28d&picture=flows")
        assert pictured["flows"] == [{"giver": "ann", "receiver": "bob", "minutes": 60}]
        assert {k: v for k, v in pictured.items() if k != "flows"} == health
        assert balance.get("/v1/circles/core/health?picture=ties")["ties"] == [["ann", "bob"]]
        assert "flows" not in balance.get("/v1/circles/ops/health?picture=flows")  # private: no picture either
        balance.get("/v1/circles/core/health?picture=amounts", status=422)
        assert balance.get("/v1/circles/ops/health")["private"] is True

        week = balance.get("/v1/members/ann/timeline?weeks=2")["weeks"]
        assert len(week) == 2 and sum(w["given"]["mentoring"] for w in week) == 60
        assert sum(w["pending_given"] for w in week) == 30

        members = balance.get("/v1/directory/members?circle=core")["members"]
        assert [m["id"] for m in members] == ["ann", "bob", "dan", "eve", "fay"]
        assert balance.get("/v1/directory/members?q=CI")["members"][0]["circles"] == ["ops"]
        assert balance.get("/v1/directory/members/ann")["leads_circles"] == []
        circles = {c["id"]: c for c in balance.get("/v1/directory/circles")["circles"]}
        assert circles["core"]["member_count"] == 5 and circles["ops"]["member_count"] == 1

        status = balance.get("/v1/projection/status")
        assert status["healthy"] is True and status["generation"] == 1
        assert all(p["lag"] == 0 for p in status["partitions"])
        assert sum(p["applied_offset"] for p in status["partitions"] if p["topic"] == "ledger.exchanges") == 7

        balance.get("/v1/members/nobody/summary", status=404)
        balance.get("/v1/exchanges/nope", status=404)
        balance.get("/v1/circles/nope/health", status=404)
        assert balance.get("/v1/signals?circle=core")["signals"] == []
        balance.get("/v1/signals?circle=nope", status=404)
        balance.get("/v1/signals?member=nobody", status=404)
        balance.get("/v1/members/ann/summary?window=forever", status=422)
        balance.get("/v1/members/ann/exchanges?status=lost", status=422)
        assert balance.client.get("/health").status_code == 200
        assert b"balance_events_applied_total" in balance.client.get("/metrics").data


def test_a_repeated_event_id_is_applied_once(kafka_bootstrap: str, prefix: str, log: EventLog, db_url: str) -> None:
    """Copies re-appended by hand (as `reciprocity dlq redrive` does), each after the original was applied
    in an earlier batch: an exchange's recording and acknowledgement, and a join its member left since."""
    today = date.today()
    a = Exchange("ann", "bob", 30, today, "help", giver_circles=["core"], receiver_circles=["core"])
    b = Exchange("bob", "ann", 20, today, "care", giver_circles=["core"], receiver_circles=["core"])
    recorded, acknowledged = envelope(a.recorded()), envelope(a.acknowledged())
    joined = envelope(MemberJoinedCircle(member_id="ann", circle_id="ops"))

    def send(*envelopes) -> None:  # type: ignore[no-untyped-def]
        log.append([Outgoing.event(topic, e) for topic, e in envelopes])

    with InProcessBalance(kafka_bootstrap, prefix, db_url) as balance:
        append(log, [circle("core"), circle("ops"), member("ann", ["core"]), member("bob", ["core"])])
        send((EXCHANGES.name, recorded), (DIRECTORY.name, joined))
        balance.wait_caught_up()
        send((EXCHANGES.name, acknowledged))
        append(log, [MemberLeftCircle(member_id="ann", circle_id="ops")])
        balance.wait_caught_up()

        send((EXCHANGES.name, recorded), (EXCHANGES.name, acknowledged), (DIRECTORY.name, joined))
        append(log, [b.recorded()])
        wait_for(lambda: balance.client.get(f"/v1/exchanges/{b.id}").status_code == 200, 30, what="the next event")
        balance.wait_caught_up()

        ann = balance.get("/v1/members/ann/summary")
        assert ann["given"] == {"minutes": 30, "count": 1, "pending_minutes": 0, "pending_count": 0}
        assert ann["received"]["pending_minutes"] == 20
        assert balance.get("/v1/exchanges/" + a.id)["status"] == "acknowledged"
        assert balance.get("/v1/directory/members/ann")["circles"] == ["core"]  # the old join stays undone
        assert balance.get("/v1/projection/status")["healthy"] is True

        # A rebuild reads the copies too, and still adds up (its check counts recordings applied once).
        assert replay(balance.engine, kafka_bootstrap, topic_prefix=prefix).generation == 2
        assert balance.get("/v1/members/ann/summary") == ann
        assert balance.get("/v1/directory/members/ann")["circles"] == ["core"]


def test_poison_records_go_to_the_dlq_and_later_events_are_projected(
    kafka_bootstrap: str, prefix: str, log: EventLog, db_url: str
) -> None:
    good = Exchange("ann", "bob", 25, date.today(), "knowledge")
    bad_schema = envelope(ExchangeRecorded(**{**good.recorded().model_dump(), "exchange_id": "x-bad"}))
    broken = bad_schema.model_copy(update={"payload": {**bad_schema.payload, "minutes": 0}})
    unknown = bad_schema.model_copy(update={"type": "ExchangeTeleported"})
    with InProcessBalance(kafka_bootstrap, prefix, db_url) as balance:
        log.append([
            Outgoing(EXCHANGES.name, b"x-1", b"{not json"),
            Outgoing(EXCHANGES.name, b"x-2", encode(unknown)),
            Outgoing(EXCHANGES.name, b"x-3", encode(broken)),
        ])
        append(log, [member("ann"), member("bob"), good.recorded()])
        balance.wait_caught_up()
        assert balance.get("/v1/members/bob/summary")["received"]["pending_minutes"] == 25
        dead = wait_for(
            lambda: (lambda r: r if len(r) == 3 else None)(
                list(read_all(kafka_bootstrap, [EXCHANGES.dlq], topic_prefix=prefix))),
            30, what="three dead letters",
        )
        errors = sorted(r.headers["dlq.error"].decode() for r in dead)
        assert errors[0].startswith("invalid ExchangeRecorded") and "minutes" in errors[0]
        assert errors[1].startswith("not JSON") and "ExchangeTeleported" in errors[2]
        for r in dead:
            assert r.headers["dlq.source.topic"] == EXCHANGES.name.encode()
            assert int(r.headers["dlq.source.offset"]) >= 0 and r.headers["dlq.source.partition"]
        assert balance.service.consumer.health.dead_lettered == 3
        assert balance.client.get("/health").status_code == 200


def test_a_valid_event_that_cannot_be_projected_is_parked_and_its_partition_goes_on(
    kafka_bootstrap: str, prefix: str, log: EventLog, db_url: str
) -> None:
    first = Exchange("ann", "bob", 10, date.today(), exchange_id="x-twice")
    again = Exchange("bob", "ann", 99, date.today(), exchange_id="x-twice")  # the same id recorded again
    with InProcessBalance(kafka_bootstrap, prefix, db_url) as balance:
        append(log, [member("ann"), member("bob"), first.recorded()])
        wait_for(lambda: balance.client.get("/v1/exchanges/x-twice").status_code == 200, 30, what="first recorded")
        # The same key: the same partition, in this order. The repeat is parked; the acknowledgement after it
        # is projected.
        (stuck, _) = log.append([Outgoing.event(EXCHANGES.name, envelope(again.recorded())),
                                 Outgoing.event(EXCHANGES.name, envelope(first.acknowledged()))])
        wait_for(lambda: balance.get("/v1/exchanges/x-twice")["status"] == "acknowledged", 30,
                 what="the event after the parked one projected")
        assert balance.get("/v1/members/ann/summary")["received"]["pending_minutes"] == 0  # nothing of the repeat
        assert balance.get("/v1/members/bob/summary")["received"]["minutes"] == 10
        health = balance.client.get("/health")
        assert health.status_code == 200
        assert health.get_json()["consumer"]["parked_since_start"] == 1
        assert balance.get("/v1/projection/status")["healthy"] is True
        letters = wait_for(lambda: balance.get("/v1/dead-letters")["dead_letters"] or None, 30,
                           what="the parked event listed")
        (letter,) = letters
        assert (letter["source_topic"], letter["source_partition"], letter["source_offset"]) == (
            EXCHANGES.name, stuck.partition, stuck.offset)
        assert letter["error"].startswith("projection failed: ProjectionError: exchange x-twice recorded twice")


def test_a_member_back_from_a_pause_is_not_silent_for_the_pause(db_url: str) -> None:
    from reciprocity.balance.policy import DEFAULT_POLICY, decide
    from reciprocity.balance.projection import BalanceProjection
    from reciprocity.balance.signals import gather_facts
    from reciprocity.contracts.events import AvailabilityChanged

    from tests.support.events import Feeder

    engine = make_engine(db_url)
    migrate(engine)
    today = date.today()
    long_ago = datetime.now(UTC) - timedelta(days=120)
    feeder = Feeder(BalanceProjection(engine), partition=0)
    feeder.feed([circle("core"), member("ann", ["core"]), member("bob", ["core"])], at=long_ago)
    feeder.feed([AvailabilityChanged(member_id="ann", status="paused", paused_until=today - timedelta(days=4))],
                at=long_ago)
    feeder.feed([AvailabilityChanged(member_id="bob", status="paused")], at=long_ago)
    feeder.feed([AvailabilityChanged(member_id="bob", status="active")], at=datetime.now(UTC) - timedelta(days=2))
    with engine.connect() as conn:
        facts, _, _ = gather_facts(conn, 1, None, today)
    by_id = {f.member_id: f for f in facts}
    assert by_id["ann"].available_since == today - timedelta(days=3)  # the day after the pause's last
    assert by_id["bob"].available_since == today - timedelta(days=2)  # the day they resumed
    for f in facts:  # registered four months ago, never exchanged, yet back only days ago: not disconnected
        assert decide(f, DEFAULT_POLICY, {}, today) == []
    engine.dispose()


def test_an_exchange_dated_a_day_ahead_of_utc_counts_at_once(db_url: str) -> None:
    """The ledger takes dates up to the latest day anywhere (UTC+14): in Auckland it is tomorrow already."""
    from reciprocity.balance import queries
    from reciprocity.balance.projection import BalanceProjection
    from reciprocity.balance.signals import gather_facts

    from tests.support.events import Feeder

    engine = make_engine(db_url)
    migrate(engine)
    today = date.today()
    feeder = Feeder(BalanceProjection(engine), partition=0)
    feeder.feed([circle("core"), member("ann", ["core"]), member("bob", ["core"])])
    feeder.feed([Exchange("ann", "bob", 30, today + timedelta(days=1), "help").recorded()])
    with engine.connect() as conn:
        assert queries.summary(conn, 1, "ann", 28, today)["given"]["pending_minutes"] == 30
        facts, _, _ = gather_facts(conn, 1, ["ann"], today)
    assert facts[0].last_exchange_on == today + timedelta(days=1) and facts[0].given_28 == 30
    engine.dispose()


def test_an_empty_span_that_reaches_the_start_targets_ends_the_wait_for_judgement(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """After a restart the signal engine judges nobody until the projection reaches the log's end as it
    was at start. When the killed process had applied every record but not yet moved past the ledger's
    last commit marker, only an empty span (no record) gets there: that must end the wait too, or every
    alert waits for the next full sweep (5 minutes by default). Found by `make chaos`."""
    from reciprocity.balance.projection import BalanceProjection
    from reciprocity.balance.signals import SignalEngine
    from reciprocity.messaging.consumer import OffsetRange

    from tests.support.events import Feeder

    engine = make_engine(f"sqlite:///{tmp_path}/balance.db")
    migrate(engine)
    signals = SignalEngine(clock=date.today)
    judged: list[object] = []
    signals.evaluate = lambda conn, gen, members: judged.append(members) or 0  # type: ignore[method-assign]
    projection = BalanceProjection(engine, signals=signals)
    Feeder(projection, partition=0).feed([circle("core"), member("ann", ["core"])])  # offsets 0, 1
    judged.clear()

    key = (DIRECTORY.name, 0)
    signals.hold_until({key: 3})  # the restarted process: the log ends after a commit marker at 2
    projection.load_offsets([key])
    projection.apply([], {key: OffsetRange(first=2, next=3)})
    assert signals.caught_up
    assert judged == [None]  # everyone judged at once
    engine.dispose()


def test_a_transaction_spanning_polls_shows_nothing_until_its_commit_and_fails_as_a_whole(db_url: str) -> None:
    """BalanceProjection as a HoldingProjection (messaging.consumer.CatchUp): held polls are invisible to
    readers, offsets included, until `commit`; members are judged and the outbox published only after
    it; a rollback, or any held poll that fails, leaves what the last commit left (a poll's rows are
    written while the next is fetched: its failure fails the next poll or the commit)."""
    from reciprocity.balance.bootstrap import catch_up as balance_catch_up
    from reciprocity.balance.projection import BalanceProjection
    from reciprocity.balance.settings import BalanceSettings
    from reciprocity.balance.signals import SignalEngine
    from reciprocity.balance.tables import positions

    from tests.support.events import Feeder, offset_ranges

    engine = make_engine(db_url)
    migrate(engine)
    # Held transactions are correct on both (below), and used on both.
    assert balance_catch_up(BalanceSettings(database_url=db_url)) is not None
    signals = SignalEngine(clock=date.today, settle_s=0)
    judged: list[object] = []
    signals.evaluate = lambda conn, gen, members: judged.append(set(members or ())) or 0  # type: ignore[method-assign]
    published: list[int] = []
    projection = BalanceProjection(engine, signals=signals, after_commit=lambda: published.append(1))
    feeder = Feeder(projection, partition=0)
    feeder.feed([circle("core"), member("ann", ["core"]), member("bob", ["core"]), member("cid", ["core"])])
    judged.clear()
    published.clear()
    key = (EXCHANGES.name, 0)
    projection.load_offsets([key])
    today = date.today()

    reader = make_engine(db_url, immediate=False)  # as the API reads, beside the open transaction

    def visible() -> tuple[int, int | None]:
        with reader.connect() as conn:
            count = conn.execute(sa.text("SELECT count(*) FROM balance_exchanges")).scalar_one()
            return count, positions.load(conn, [key], generation=1).get(key)

    def hold(*exchanges: Exchange, acknowledged: tuple[Exchange, ...] = ()) -> None:
        records = feeder.append([x.recorded() for x in exchanges] + [x.acknowledged() for x in acknowledged])
        projection.hold(records, offset_ranges(records))

    def circle_counters() -> tuple[int, int, int, int]:
        with reader.connect() as conn:
            return conn.execute(sa.text("SELECT sum(pending_inside_count), sum(pending_inside_minutes), "
                                        "sum(inside_count), sum(inside_minutes) FROM balance_circle_day")).one()

    first = Exchange("ann", "bob", 30, today, "help", giver_circles=["core"], receiver_circles=["core"])
    second = Exchange("bob", "cid", 20, today, "care", giver_circles=["core"], receiver_circles=["core"])
    hold(first)
    hold(second)
    hold(acknowledged=(second,))  # a transition of an exchange recorded by an earlier poll of the transaction
    assert visible() == (0, None) and judged == [] and published == []
    projection.commit()
    assert visible() == (2, 3) and judged == [{"ann", "bob", "cid"}] and published == [1]
    # The polls' counters summed in memory, written once at the commit (and once only: PostgreSQL stages them).
    assert circle_counters() == (1, 30, 1, 20)

    hold(Exchange("cid", "ann", 10, today, "help"))
    projection.rollback()
    assert visible() == (2, 3) and published == [1]

    feeder.next[key] = 3  # the consumer reads the rolled-back poll again from the stored offset
    hold(Exchange("cid", "ann", 10, today, "help"))
    hold(first)  # a poll that fails (a recording repeated): written while the next is fetched, so
    with pytest.raises(sa.exc.IntegrityError):  # its failure fails the next poll, and all of it goes
        hold(Exchange("ann", "cid", 5, today, "help"))
    assert visible() == (2, 3) and published == [1] and len(judged) == 1
    projection.commit()  # nothing open: nothing to do
    feeder.next[key] = 3
    hold(first)
    with pytest.raises(sa.exc.IntegrityError):
        projection.commit()  # ... or the commit
    assert visible() == (2, 3) and published == [1] and len(judged) == 1
    assert visible() == (2, 3) and published == [1] and circle_counters() == (1, 30, 1, 20)
    reader.dispose()
    engine.dispose()
