"""The daily digest end to end without Kafka: ledger exchange events through notify's projection, the
planning job, the sender and a real SMTP sink. One email per member per day with the right items, none
when there is nothing new or she turned it off, none twice, also from a restarted notify."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from reciprocity.contracts.events import ExchangeAcknowledged, ExchangeDisputed, ExchangeRecorded, ExchangeWithdrawn
from reciprocity.contracts.sealed import Sealed
from reciprocity.notify.digest import plan_digests

from devstack.mail_sink import MailSink
from tests.integration.test_notify_delivery import BASE, Rig
from tests.support import events as t

DAY = date(2026, 11, 20)


def facts(xid: str, giver: str, receiver: str, minutes: int = 45, kind: str = "mentoring") -> dict:
    return {"exchange_id": xid, "giver": giver, "receiver": receiver, "kind": kind, "minutes": minutes,
            "occurred_on": DAY - timedelta(days=1), "giver_circles": ["design"], "receiver_circles": ["design"]}


def at(day: date, hour: int = 9) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def digests(sink: MailSink, to: str) -> list:
    return [m for m in sink.messages() if m["X-RcptTo"] == to]


def body(message) -> str:  # type: ignore[no-untyped-def]
    return " ".join(message.get_body(("plain",)).get_content().split())


def test_one_digest_a_day_with_the_right_items_none_when_empty_none_twice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/notify.db"
    with MailSink(tmp_path / "mail") as sink:
        rig = Rig(url, sink)
        rig.feeder.feed([*t.organisation(), t.own_emails("zed", True, daily_digest=False)])
        rig.feeder.feed([
            ExchangeRecorded(**facts("x-1", "bo", "ana"), recorded_by="bo"),  # waits for ana
            ExchangeRecorded(**facts("x-2", "ana", "cy", 30, "help"), recorded_by="ana"),  # waits for cy
            ExchangeRecorded(**facts("x-3", "cy", "bo", 20, "care"), recorded_by="cy"),  # cy withdraws it
            ExchangeRecorded(**facts("x-4", "bo", "zed"), recorded_by="bo"),  # zed turned the digest off
            ExchangeRecorded(**facts("x-5", "ana", "bo", 15, "feedback"), recorded_by="ana"),  # bo disputes it
        ])
        rig.feeder.feed([ExchangeWithdrawn(**facts("x-3", "cy", "bo", 20, "care"), by="cy"),
                         ExchangeDisputed(**facts("x-5", "ana", "bo", 15, "feedback"), by="bo",
                                          reason=Sealed.clear("no", ["ana", "bo"])),
                         ExchangeAcknowledged(**facts("x-2", "ana", "cy", 30, "help"), by="cy")])
        assert plan_digests(rig.engine, now=at(DAY), web_base_url=BASE) == 2  # ana and bo; cy's settled itself
        rig.drain()
        (to_ana,) = digests(sink, "ana@example.org")
        assert str(to_ana["Subject"]) == "1 exchange waiting for you"
        assert "Bo Chen recorded 45 min of mentoring on 19 November with you" in body(to_ana)
        assert "Bo Chen disputed the 15 min of feedback on 19 November you recorded" in body(to_ana)
        (to_bo,) = digests(sink, "bo@example.org")
        assert "Cy Park withdrew the 20 min of care on 19 November they had recorded with you" in body(to_bo)
        assert not digests(sink, "cy@example.org") and not digests(sink, "zed@example.org")

        # Later the same day, something new: it waits for tomorrow (one a day at most).
        rig.feeder.feed([ExchangeRecorded(**facts("x-6", "cy", "ana", 10, "care"), recorded_by="cy")])
        assert plan_digests(rig.engine, now=at(DAY, 18), web_base_url=BASE) == 0
        rig.close()

        # A restarted notify on the same delivery log plans nothing again today...
        again = Rig(url, sink)
        assert plan_digests(again.engine, now=at(DAY, 20), web_base_url=BASE) == 0
        again.drain()
        assert len(sink.messages()) == 2
        # ...and tomorrow tells ana the new one, with the earlier one still waiting.
        assert plan_digests(again.engine, now=at(DAY + timedelta(days=1)), web_base_url=BASE) == 1
        again.drain()
        latest = digests(sink, "ana@example.org")[-1]
        assert "Cy Park recorded 10 min of care" in body(latest) and "1 more from earlier still wait" in body(latest)
        # The day after, nothing new: nothing at all.
        assert plan_digests(again.engine, now=at(DAY + timedelta(days=2)), web_base_url=BASE) == 0
        again.close()
