"""A correction on the read side: the pending minutes move from the replaced facts to the corrected
ones (day and kind too), the other party can read what changed, and a repeated correction event is
applied once."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from reciprocity.balance.app import create_app
from reciprocity.balance.db import make_engine, migrate
from reciprocity.balance.projection import BalanceProjection
from reciprocity.contracts.envelope import wrap
from reciprocity.contracts.events import CorrectedFacts, ExchangeAcknowledged, ExchangeCorrected
from reciprocity.contracts.sealed import Sealed
from reciprocity.messaging.consumer import Delivered, OffsetRange

from tests.support.auth import BALANCE_TOKEN, authorized
from tests.support.balance_stack import stored_offsets
from tests.support.events import Exchange, Feeder, circle, member


def test_a_correction_moves_the_pending_minutes_and_says_what_changed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path}/balance.db")
    migrate(engine)
    projection = BalanceProjection(engine)
    feeder = Feeder(projection, partition=0)
    feeder.feed([circle("core"), *(member(m, ["core"]) for m in ("ann", "bob"))])
    client = authorized(create_app(engine=engine).test_client(), BALANCE_TOKEN)
    today = date.today()
    x = Exchange("ann", "bob", 45, today - timedelta(days=3), "mentoring", note="pairing", exchange_id="x-fix-1")
    feeder.feed([x.recorded()])
    corrected = ExchangeCorrected(**{**x.facts, "kind": "feedback", "minutes": 60, "occurred_on": today},
                                  by="ann", note=Sealed.clear("a review, in fact", ["ann", "bob"]), note_changed=True,
                                  previous=CorrectedFacts(kind="mentoring", minutes=45,
                                                          occurred_on=x.facts["occurred_on"]))
    feeder.feed([corrected])

    summary = client.get("/v1/members/ann/summary", query_string={"window": "7d"}).get_json()
    assert summary["given"]["pending_minutes"] == 60 and summary["given"]["pending_count"] == 1
    assert summary["by_kind"]["mentoring"]["pending_given_minutes"] == 0
    assert summary["by_kind"]["feedback"]["pending_given_minutes"] == 60
    shown = client.get("/v1/exchanges/x-fix-1").get_json()
    assert (shown["kind"], shown["minutes"], shown["occurred_on"], shown["note"]) == (
        "feedback", 60, today.isoformat(), "a review, in fact")
    assert shown["correction"]["previous"] == {"kind": "mentoring", "minutes": 45,
                                               "occurred_on": x.facts["occurred_on"].isoformat()}
    assert shown["correction"]["note_changed"] is True

    # The same correction delivered again (a redriven copy) changes nothing.
    envelope = wrap(corrected, producer="ledger", event_id=uuid.UUID(shown["correction"]["event_id"]))
    offset = stored_offsets(engine)[(corrected.TOPIC, 0)]
    projection.apply([Delivered(corrected.TOPIC, 0, offset, envelope, corrected)],
                     {(corrected.TOPIC, 0): OffsetRange(first=offset, next=offset + 1)})
    again = client.get("/v1/members/ann/summary", query_string={"window": "7d"}).get_json()
    assert again["given"] == summary["given"]

    # The ledger's acknowledgement carries the corrected facts: 60 min of feedback, today, settled.
    feeder.next[(corrected.TOPIC, 0)] = offset + 1
    feeder.feed([ExchangeAcknowledged(**{**x.facts, "kind": "feedback", "minutes": 60, "occurred_on": today},
                                      by="bob")])
    settled = client.get("/v1/members/ann/summary", query_string={"window": "7d"}).get_json()
    assert (settled["given"]["minutes"], settled["given"]["pending_minutes"]) == (60, 0)
    engine.dispose()
