"""A value the ledger accepts is one that every projection can apply (SPEC, bounds on every value).

Hypothesis generates contract-valid events at the extremes of every bound (tests/support/extremes.py) and
feeds them, as the consumer would, through the balance projection (with the alert policy and the read
API on top), the notify projection (with its sender, to a real SMTP sink) and the replay, on SQLite and
on PostgreSQL: nothing stops, nothing is parked, and the sums add up as the replay verifies them.
Example counts are modest: the extremes are sampled explicitly, so a few dozen examples reach them all.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reciprocity.balance.app import create_app
from reciprocity.balance.db import make_engine, migrate
from reciprocity.balance.generations import active_generation
from reciprocity.balance.projection import BalanceProjection
from reciprocity.balance.replay import replay, verify
from reciprocity.balance.settings import BalanceSettings
from reciprocity.balance.signals import SignalEngine
from reciprocity.common import db as common_db
from reciprocity.contracts.bounds import EARLIEST_EVENT_DAY, LATEST_EVENT_DAY
from reciprocity.contracts.commands import today_utc
from reciprocity.contracts.envelope import Envelope, decode, encode, wrap
from reciprocity.contracts.events import (
    MAX_DAYS_WITHOUT,
    MINUTES_BOUND,
    Event,
    MemberDisconnected,
    MemberOverextended,
    SignalCleared,
)
from reciprocity.contracts.topics import DIRECTORY, EXCHANGES, SIGNALS
from reciprocity.messaging.consumer import Delivered, OffsetRange
from reciprocity.messaging.event_log import EventLog, Outgoing
from reciprocity.messaging.inspect import read_all
from reciprocity.notify import store
from reciprocity.notify.projection import NotifyProjection
from reciprocity.notify.sender import Sender, SmtpConfig, SmtpTransport

from devstack.mail_sink import MailSink
from tests.support.balance_stack import make_topics
from tests.support.events import offset_ranges
from tests.support.extremes import Organisation, any_day, organisations

EXAMPLES = 15
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


def _roundtrip(event: Event, producer: str = "ledger") -> tuple[Envelope, Event]:
    """Through the bytes a consumer reads: what the projection gets is what decode makes of the log."""
    envelope, decoded = decode(encode(wrap(event, producer=producer, occurred_at=datetime.now(UTC))))
    assert decoded == event, "a contract-valid event must read back as itself"
    return envelope, decoded


def _batch(events: list[Event], topic_partitions: dict[str, int], next_offsets: dict[tuple[str, int], int],
           producer: str = "ledger") -> tuple[list[Delivered], dict[tuple[str, int], OffsetRange]]:
    """One batch as the consumer hands it over: each topic's events on a partition of this example's own."""
    delivered = []
    for event in events:
        key = (event.TOPIC, topic_partitions[event.TOPIC])
        offset = next_offsets.get(key, 0)
        envelope, decoded = _roundtrip(event, producer)
        delivered.append(Delivered(key[0], key[1], offset, envelope, decoded))
        next_offsets[key] = offset + 1
    return delivered, offset_ranges(delivered)


def _partitions() -> dict[str, int]:
    """Partitions no other example uses, so examples share a database without sharing offsets."""
    base = 1_000 + uuid.uuid4().int % 2**30  # not `random`: hypothesis seeds it alike in every example
    return {DIRECTORY.name: base, EXCHANGES.name: base + 1, SIGNALS.name: base + 2}


@dataclass
class BalanceRig:
    projection: BalanceProjection
    signals: SignalEngine
    client: object
    recorded: int = 0


@pytest.fixture
def balance(db_url: str) -> Iterator[BalanceRig]:
    engine = make_engine(db_url)
    migrate(engine)
    signals = SignalEngine(clock=today_utc, settle_s=0, max_defer_s=0)
    signals.caught_up = True
    app = create_app(BalanceSettings(database_url=db_url, kafka_bootstrap_servers="127.0.0.1:9"), engine=engine,
                     end_offsets_fn=dict, dead_letters_fn=list)
    app.config["TESTING"] = True
    yield BalanceRig(BalanceProjection(engine, signals=signals), signals, app.test_client())
    engine.dispose()


def _get(client, path: str) -> dict:  # type: ignore[no-untyped-def]
    answer = client.get(path, headers={"Authorization": f"Bearer {BalanceSettings().balance_token}"})
    assert answer.status_code == 200, (path, answer.status_code, answer.get_data(as_text=True)[:500])
    return answer.get_json()


@given(org=organisations())
@PROPERTY
def test_balance_projects_and_serves_every_extreme(balance: BalanceRig, org: Organisation) -> None:
    partitions, offsets = _partitions(), {}
    projection = balance.projection
    for events in (org.directory, org.exchanges):  # as two polls would bring them
        batch, spans = _batch(events, partitions, offsets)
        projection.load_offsets(list(spans))
        projection.apply(batch, spans)
    balance.recorded += org.recorded
    with projection.engine.begin() as conn:
        gen = active_generation(conn)
        balance.signals.evaluate(conn, gen, org.members)  # the alert policy over the extreme numbers
    with projection.engine.connect() as conn:
        verify(projection.engine, gen, {}, balance.recorded)  # the replay's own checks: the sums add up
    client = balance.client
    for member in org.members:
        for window in ("1d", "28d", "730d"):
            _get(client, f"/v1/members/{member}/summary?window={window}")
        _get(client, f"/v1/members/{member}/relationships?window=730d")
        _get(client, f"/v1/members/{member}/timeline?weeks=104")
        _get(client, f"/v1/members/{member}/exchanges?limit=500")
        _get(client, f"/v1/directory/members/{member}")
    for circle in org.circles:
        _get(client, f"/v1/circles/{circle}/health?window=730d")
        _get(client, f"/v1/signals?circle={circle}")
    for event in org.exchanges[:1]:
        _get(client, f"/v1/exchanges/{event.exchange_id}")  # type: ignore[attr-defined]
    _get(client, "/v1/appreciations?limit=500")


# --- notify: the same directory, and signals at the extremes ------------------------------------------------


@st.composite
def signals_about(draw: st.DrawFn, org: Organisation) -> list[Event]:
    out: list[Event] = []
    for member in org.members:
        circles = draw(st.lists(st.sampled_from(org.circles), unique=True, min_size=1))
        start, end = sorted([draw(any_day()), draw(any_day())])
        given_minutes = draw(st.sampled_from([0, 1, 240, MINUTES_BOUND]) | st.integers(0, MINUTES_BOUND))
        received = draw(st.sampled_from([0, 1, MINUTES_BOUND]) | st.integers(0, MINUTES_BOUND))
        raised: Event
        if draw(st.booleans()):
            raised = MemberOverextended(
                member_id=member, circles=circles, window_start=start, window_end=end,
                reason=draw(st.sampled_from(["ratio", "capacity", "ratio_and_capacity"])),
                given_minutes=given_minutes, received_minutes=received,
                ratio=None if received == 0 else draw(st.sampled_from([given_minutes / received, 0.0, 1e300])),
                given_last_7_days=draw(st.sampled_from([0, MINUTES_BOUND])),
                weekly_capacity_minutes=draw(st.sampled_from([None, 0, 168 * 60, MINUTES_BOUND])))
        else:
            raised = MemberDisconnected(
                member_id=member, circles=circles, window_start=start, window_end=end,
                last_exchange_on=draw(st.sampled_from([None, EARLIEST_EVENT_DAY, LATEST_EVENT_DAY, start])),
                days_without_exchange=draw(st.sampled_from([0, 21, MAX_DAYS_WITHOUT])))
        out.append(raised)
        if draw(st.booleans()):
            out.append(SignalCleared(
                member_id=member, circles=circles, window_start=start, window_end=end,
                signal_kind="overextended" if isinstance(raised, MemberOverextended) else "disconnected",
                raised_event_id=str(uuid.uuid4()), reason=draw(st.sampled_from([None, "rebalanced", "paused"]))))
    return out


@pytest.fixture
def notify(db_url: str, tmp_path) -> Iterator[tuple[NotifyProjection, Sender, MailSink]]:  # type: ignore[no-untyped-def]
    url = db_url if not db_url.startswith("sqlite") else f"sqlite:///{tmp_path}/notify.db"
    engine = common_db.make_engine(url)
    store.migrate(engine)
    with MailSink(tmp_path / "mail") as sink:
        sender = Sender(engine, SmtpTransport(SmtpConfig(port=sink.port, timeout_s=30)), retry_initial_s=0.05,
                        retry_max_s=0.2, poll_s=0.05)
        yield NotifyProjection(engine, web_base_url="http://reciprocity.test"), sender, sink
    engine.dispose()


@given(data=st.data())
@PROPERTY
def test_notify_plans_and_sends_every_extreme(notify, data: st.DataObject) -> None:  # type: ignore[no-untyped-def]
    projection, sender, sink = notify
    org = data.draw(organisations(max_exchanges=1))
    partitions, offsets = _partitions(), {}
    for events, producer in ((org.directory, "ledger"), (data.draw(signals_about(org)), "balance")):
        batch, spans = _batch(events, partitions, offsets, producer)
        projection.load_offsets(list(spans))
        projection.apply(batch, spans)
    sent_before = len(sink.messages())
    while sender.send_due():  # every planned email rendered and handed to SMTP, names and numbers as they are
        pass
    assert len(sink.messages()) >= sent_before


# --- the replay, from a real log ---------------------------------------------------------------------------


@pytest.mark.kafka
@given(orgs=st.lists(organisations(max_exchanges=3), min_size=1, max_size=3))
@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow, HealthCheck.data_too_large])
def test_a_replay_over_every_extreme_completes_and_switches(kafka_bootstrap: str, db_url: str,
                                                             orgs: list[Organisation]) -> None:
    prefix = f"t.bounds.{uuid.uuid4().hex[:10]}."
    make_topics(kafka_bootstrap, prefix)
    log = EventLog(kafka_bootstrap, client_id="test-ledger", topic_prefix=prefix)
    try:
        for org in orgs:
            log.append([Outgoing.event(e.TOPIC, wrap(e, producer="ledger")) for e in org.directory])
            log.append([Outgoing.event(e.TOPIC, wrap(e, producer="ledger",
                                                     occurred_at=datetime.now(UTC) - timedelta(seconds=1)))
                        for e in org.exchanges])
    finally:
        log.close()
    engine = make_engine(db_url)
    migrate(engine)
    try:
        result = replay(engine, kafka_bootstrap, topic_prefix=prefix, batch_size=7)
        assert result.dead_letters == 0 and result.events == sum(len(o.directory) + len(o.exchanges) for o in orgs)
        with engine.connect() as conn:
            assert active_generation(conn) == result.generation
    finally:
        engine.dispose()
    assert list(read_all(kafka_bootstrap, [DIRECTORY.dlq, EXCHANGES.dlq], topic_prefix=prefix)) == []
