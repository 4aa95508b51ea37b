"""The alert policy is fair (SPEC, Alert policy): nobody can raise an alert about someone else, and a
pause clears what was in force without anyone being told. On a real database, through the projection
and the signal engine, reading the signals they put in the outbox for balance.signals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from reciprocity.balance import tables as t
from reciprocity.balance.db import make_engine, migrate
from reciprocity.balance.projection import BalanceProjection
from reciprocity.balance.signals import SignalEngine, gather_facts
from reciprocity.contracts.envelope import decode
from reciprocity.contracts.events import ExchangeAcknowledged, ExchangeRecorded

from tests.support.events import Exchange, Feeder, circle, member, pause

TODAY = datetime.now(UTC).date()


@pytest.fixture
def feeder(tmp_path):  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path}/balance.db")
    migrate(engine)
    yield Feeder(BalanceProjection(engine, signals=SignalEngine(clock=lambda: TODAY)), partition=0)
    engine.dispose()


def outbox(feeder: Feeder) -> list[tuple[str, dict]]:
    with feeder.projection.engine.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(sa.select(t.outbox.c.value).order_by(t.outbox.c.id)).scalars().all()
    return [(env.type, event.model_dump(mode="json")) for env, event in (decode(bytes(v)) for v in rows)]


def recorded_by_receiver(x: Exchange) -> ExchangeRecorded:
    return ExchangeRecorded(**x.facts, recorded_by=x.facts["receiver"])


def acknowledged_by_giver(x: Exchange) -> ExchangeAcknowledged:
    return ExchangeAcknowledged(**x.facts, by=x.facts["giver"])


def test_what_a_receiver_records_raises_nothing_about_the_giver_until_she_acknowledges(feeder: Feeder) -> None:
    core = ["core"]
    feeder.feed([circle("core"), *[member(m, core) for m in ("erin", "rex", "sam", "tia", "uma")]])
    # rex says twice that he received a whole day of care from erin; erin did nothing.
    claims = [Exchange("erin", "rex", 1440, TODAY - timedelta(days=d), "care", giver_circles=core,
                       receiver_circles=core) for d in (1, 2)]
    feeder.feed([recorded_by_receiver(x) for x in claims])
    assert outbox(feeder) == []
    # What erin recorded herself counts while pending: a giver whose help is unacknowledged still gives.
    own = Exchange("erin", "sam", 300, TODAY - timedelta(days=3), "mentoring", giver_circles=core,
                   receiver_circles=core)
    feeder.feed([own.recorded()])
    ((kind, raised),) = outbox(feeder)
    assert kind == "MemberOverextended" and raised["member_id"] == "erin"
    assert raised["given_minutes"] == 300  # rex's claims are not in it
    # Once erin acknowledges rex's claims, they are hers: the numbers of a later evaluation include them.
    feeder.feed([acknowledged_by_giver(x) for x in claims])
    with feeder.projection.engine.begin() as conn:  # type: ignore[attr-defined]
        facts = {f.member_id: f for f in gather_facts(conn, 1, ["erin", "rex"], TODAY)[0]}
    assert facts["erin"].given_28 == 300 + 2 * 1440 and facts["rex"].received_28 == 2 * 1440


def test_rex_receiving_counts_only_what_the_giver_recorded_or_he_acknowledged(feeder: Feeder) -> None:
    core = ["core"]
    feeder.feed([circle("core"), *[member(m, core) for m in ("ann", "bo")]])
    by_giver = Exchange("ann", "bo", 50, TODAY, "help", giver_circles=core, receiver_circles=core)
    by_receiver = Exchange("ann", "bo", 70, TODAY, "help", giver_circles=core, receiver_circles=core)
    feeder.feed([by_giver.recorded(), recorded_by_receiver(by_receiver)])
    with feeder.projection.engine.begin() as conn:  # type: ignore[attr-defined]
        facts = {f.member_id: f for f in gather_facts(conn, 1, None, TODAY)[0]}
    assert (facts["ann"].given_28, facts["ann"].given_7, facts["bo"].received_28) == (50, 50, 50)


def test_a_pause_clears_the_signal_in_force_saying_it_was_the_pause(feeder: Feeder) -> None:
    core = ["core"]
    feeder.feed([circle("core"), *[member(m, core) for m in ("kai", "lou")]])
    feeder.feed([Exchange("kai", "lou", 400, TODAY - timedelta(days=1), "mentoring", giver_circles=core,
                          receiver_circles=core).recorded()])
    feeder.feed([pause("kai", TODAY + timedelta(days=14))])
    (kind, _), (cleared_kind, cleared) = outbox(feeder)
    assert (kind, cleared_kind) == ("MemberOverextended", "SignalCleared")
    assert cleared["reason"] == "paused" and cleared["signal_kind"] == "overextended"
    feeder.feed([Exchange("kai", "lou", 400, TODAY, "help", giver_circles=core, receiver_circles=core).recorded()])
    assert len(outbox(feeder)) == 2  # paused members raise nothing
