"""`reciprocity seed --demo` against a real ledger process on a real broker: what it appends, read back
from the topics, makes a believable organisation; a second run appends nothing."""

from __future__ import annotations

import io
from collections import Counter
from datetime import timedelta

import pytest
from reciprocity.cli.main import main as cli
from reciprocity.cli.seed import DEMO_PASSWORD, DISCONNECTED_MEMBER, MENTOR, OVER_CAPACITY, PAUSED_MEMBER, seed_demo
from reciprocity.contracts.commands import today_utc
from reciprocity.contracts.events import (
    AvailabilityChanged,
    CapacityDeclared,
    CircleFormed,
    CircleLeadsChanged,
    ExchangeAcknowledged,
    ExchangeDisputed,
    ExchangeRecorded,
    ExchangeWithdrawn,
    MemberRegistered,
)
from reciprocity.contracts.vocabulary import Kind

from tests.support.ledger import TOKEN, new_prefix, read_events
from tests.support.services import ServiceProcess

pytestmark = pytest.mark.kafka


def test_seed_demo_builds_a_believable_organisation_once(kafka_bootstrap: str, tmp_path, capsys,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = new_prefix("seed")
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TOPIC_PREFIX": prefix, "LEDGER_TOKEN": TOKEN}
    web_db = f"sqlite:///{tmp_path / 'web.db'}"
    with ServiceProcess("reciprocity.ledger.app", env=env, log_dir=tmp_path) as ledger:
        summary = seed_demo(ledger.url, TOKEN, web_database_url=web_db)
        events = [event for _, event in read_events(kafka_bootstrap, prefix, ledger_url=ledger.url)]

        circles = {e.circle_id: e for e in events if isinstance(e, CircleFormed)}
        members = {e.member_id: e for e in events if isinstance(e, MemberRegistered)}
        assert len(members) >= 40 and summary.members == len(members)
        assert len(circles) >= 5
        depth = {c: 0 for c in circles}
        for circle_id in circles:
            parent = circles[circle_id].parent
            while parent:
                depth[circle_id] += 1
                parent = circles[parent].parent
        assert max(depth.values()) >= 2, "circles nest at least two levels deep"
        assert {e.circle_id for e in events if isinstance(e, CircleLeadsChanged) and e.leads} == set(circles)
        assert len({e.member_id for e in events if isinstance(e, CapacityDeclared)}) >= 5
        assert [e.member_id for e in events
                if isinstance(e, AvailabilityChanged) and e.status == "paused"] == [PAUSED_MEMBER]
        assert [m.member_id for m in members.values() if m.role == "operator"]
        assert all(m.email.text.endswith("@example.org") for m in members.values())

        recorded = [e for e in events if isinstance(e, ExchangeRecorded)]
        assert len(recorded) == summary.exchanges >= 500
        assert {e.kind for e in recorded} == set(Kind)
        days = [e.occurred_on for e in recorded]
        assert min(days) >= today_utc() - timedelta(days=365) and max(days) <= today_utc()
        assert (max(days) - min(days)).days >= 90, "months of history"
        settled = Counter(type(e).__name__ for e in events if isinstance(
            e, (ExchangeAcknowledged, ExchangeDisputed, ExchangeWithdrawn)))
        assert settled["ExchangeAcknowledged"] > len(recorded) / 2  # most are acknowledged
        assert 0 < settled["ExchangeDisputed"] < len(recorded) / 10 and 0 < settled["ExchangeWithdrawn"]
        pending = len(recorded) - sum(settled.values())
        assert pending > 10
        assert any(e.shared for e in recorded)
        assert any(e.shared and e.thanks for e in events if isinstance(e, ExchangeAcknowledged))

        # The members who trip the policy, as the balance service will see them.
        def counted(member: str, days_back: int, role: str) -> int:
            closed = {e.exchange_id for e in events if isinstance(e, (ExchangeDisputed, ExchangeWithdrawn))}
            return sum(e.minutes for e in recorded if getattr(e, role) == member and e.exchange_id not in closed
                       and e.occurred_on > today_utc() - timedelta(days=days_back))

        assert counted(MENTOR, 28, "giver") >= 240 and counted(MENTOR, 21, "receiver") == 0
        capacity = [e.weekly_hours for e in events if isinstance(e, CapacityDeclared) and e.member_id == OVER_CAPACITY]
        assert counted(OVER_CAPACITY, 7, "giver") > capacity[-1] * 60
        assert not any(DISCONNECTED_MEMBER in (e.giver, e.receiver) and e.occurred_on > today_utc() - timedelta(days=30)
                       for e in recorded)

        from reciprocity.web.accounts import verify

        assert verify(web_db, MENTOR, DEMO_PASSWORD)

        # Again: nothing new, and --if-empty does not even look further.
        again = seed_demo(ledger.url, TOKEN)
        assert (again.appended, again.commands) == (0, summary.commands)
        assert again.anchor == summary.anchor
        monkeypatch.setattr("sys.stdin", io.StringIO(TOKEN + "\n"))
        assert cli(["seed", "--demo", "--ledger-url", ledger.url, "--token-stdin", "--if-empty",
                    "--no-passwords"]) == 0
        assert "Nothing seeded" in capsys.readouterr().out
    assert len(read_events(kafka_bootstrap, prefix)) == len(events)
