"""Hypothesis strategies for contract-valid events at the extremes of every bound (contracts/bounds.py):
dates at both ends of what an event may carry, the longest texts, every kind, every transition. Each
drawn organisation uses ids of its own (a fresh suffix), so examples share a database without meeting."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta

from hypothesis import strategies as st
from reciprocity.contracts.bounds import EARLIEST_EVENT_DAY, LATEST_EVENT_DAY
from reciprocity.contracts.commands import MAX_DAYS_BACK, latest_today, today_utc
from reciprocity.contracts.events import (
    NOTE_MAX,
    AvailabilityChanged,
    CapacityDeclared,
    CircleFormed,
    CircleLeadsChanged,
    Event,
    ExchangeAcknowledged,
    ExchangeDisputed,
    ExchangeRecorded,
    ExchangeWithdrawn,
    MemberRegistered,
)
from reciprocity.contracts.sealed import Sealed
from reciprocity.contracts.vocabulary import Kind

_COUNTER = itertools.count()

# Free text: any character but control characters and surrogates, and line breaks; astral characters
# (emoji), combining marks, right-to-left text and the replacement character included.
_free_char = st.one_of(st.characters(blacklist_categories=("Cc", "Cs")), st.just("\n"))
_line_char = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"))


def _exactly(alphabet: st.SearchStrategy[str], size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=size, max_size=size)


def free_text(min_size: int = 0) -> st.SearchStrategy[str]:
    """Notes, thanks, reasons: empty (where allowed), short, or exactly as long as allowed."""
    return st.one_of(st.text(alphabet=_free_char, min_size=min_size, max_size=40),
                     _exactly(_free_char, NOTE_MAX), st.just("🙏" * NOTE_MAX), st.just(("a\n" * NOTE_MAX)[:NOTE_MAX]),
                     st.just("\ufffd" + "x" * (NOTE_MAX - 1)))


def name() -> st.SearchStrategy[str]:
    """Names: one character to the longest, on one line; no surrounding blanks (commands strip them)."""
    return st.one_of(st.text(alphabet=_line_char, min_size=1, max_size=20), _exactly(_line_char, 100),
                     st.just("Ω"), st.just("ⓐ" * 100), st.just("אבג Lee"),
                     st.just("Zoë O'Brien-Łukasiewicz (she/her) 👩🏽‍🔬")).map(lambda s: s.strip() or "x")


def any_day() -> st.SearchStrategy[date]:
    """Any date an event may carry: its two ends, around today, and the ledger's own bounds."""
    today = today_utc()
    return st.one_of(st.sampled_from([EARLIEST_EVENT_DAY, LATEST_EVENT_DAY, today, latest_today(),
                                      today - timedelta(days=MAX_DAYS_BACK), today + timedelta(days=365)]),
                     st.dates(EARLIEST_EVENT_DAY, LATEST_EVENT_DAY))


minutes = st.one_of(st.sampled_from([1, 1440]), st.integers(1, 1440))
weekly_hours = st.one_of(st.none(), st.sampled_from([0.0, 168.0, 0.5, 167.99]), st.floats(0, 168))


@dataclass
class Organisation:
    """What one example appends: directory events, then exchange events (recordings and transitions)."""

    directory: list[Event] = field(default_factory=list)
    exchanges: list[Event] = field(default_factory=list)
    members: list[str] = field(default_factory=list)
    circles: list[str] = field(default_factory=list)
    recorded: int = 0  # ExchangeRecorded events


def _slug(base: str, suffix: str, longest: bool) -> str:
    slug = f"{base}-{suffix}"
    return (slug + "x" * 64)[:64] if longest else slug


@st.composite
def organisations(draw: st.DrawFn, max_members: int = 3, max_exchanges: int = 4) -> Organisation:
    suffix = f"{next(_COUNTER)}{uuid.uuid4().hex[:6]}"
    org = Organisation()
    n_circles = draw(st.integers(1, 2))
    for i in range(n_circles):
        circle_id = _slug(f"c{i}", suffix, draw(st.booleans()))
        org.circles.append(circle_id)
        org.directory.append(CircleFormed(circle_id=circle_id, name=draw(name()),
                                          parent=org.circles[0] if i else None))
    for i in range(draw(st.integers(2, max_members))):
        member_id = _slug(f"m{i}", suffix, draw(st.booleans()))
        org.members.append(member_id)
        circles = draw(st.lists(st.sampled_from(org.circles), unique=True, max_size=len(org.circles)))
        org.directory.append(MemberRegistered(member_id=member_id, name=Sealed.clear(draw(name()), [member_id]),
                                              circles=circles,
                                              email=Sealed.clear(f"{member_id}@example.org", [member_id])))
        org.directory.append(CapacityDeclared(member_id=member_id, weekly_hours=draw(weekly_hours)))
        status = draw(st.sampled_from(["active", "paused"]))
        until = draw(st.one_of(st.none(), any_day())) if status == "paused" else None
        org.directory.append(AvailabilityChanged(member_id=member_id, status=status, paused_until=until))
    org.directory.append(CircleLeadsChanged(circle_id=org.circles[0], leads=org.members[:draw(st.integers(0, 2))]))

    for _ in range(draw(st.integers(1, max_exchanges))):
        giver, receiver = draw(st.permutations(org.members))[:2]
        facts = dict(
            exchange_id=f"x-{uuid.uuid4().hex[:16]}", giver=giver, receiver=receiver, kind=draw(st.sampled_from(Kind)),
            minutes=draw(minutes), occurred_on=draw(any_day()),
            giver_circles=draw(st.lists(st.sampled_from(org.circles), unique=True)),
            receiver_circles=draw(st.lists(st.sampled_from(org.circles), unique=True)),
        )
        recorder = draw(st.sampled_from([giver, receiver]))
        other = receiver if recorder == giver else giver

        def sealed(text: str, giver: str = giver, receiver: str = receiver) -> Sealed | None:
            # In the clear, as a projection holds a value once opened (tests have no key store).
            return Sealed.clear(text, [giver, receiver]) if text else None

        org.exchanges.append(ExchangeRecorded(**facts, note=sealed(draw(free_text())), recorded_by=recorder,
                                              shared=draw(st.booleans())))
        org.recorded += 1
        step = draw(st.sampled_from(["none", "acknowledge", "dispute", "withdraw"]))
        if step == "acknowledge":
            org.exchanges.append(ExchangeAcknowledged(**facts, by=other, thanks=sealed(draw(free_text())),
                                                      shared=draw(st.booleans())))
        elif step == "dispute":
            org.exchanges.append(ExchangeDisputed(**facts, by=other, reason=Sealed.clear(
                draw(free_text(min_size=1)), [giver, receiver])))
        elif step == "withdraw":
            org.exchanges.append(ExchangeWithdrawn(**facts, by=recorder))
    return org
