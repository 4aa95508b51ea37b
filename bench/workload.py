"""A believable organisation and its exchanges, as the ledger would append them (valid envelopes)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from reciprocity.contracts.envelope import wrap
from reciprocity.contracts.events import CircleFormed, Event, ExchangeRecorded, MemberRegistered
from reciprocity.contracts.sealed import Sealed
from reciprocity.contracts.vocabulary import EXCHANGE_KINDS
from reciprocity.messaging.event_log import Outgoing

KIND_WEIGHTS = [15, 25, 30, 15, 5, 10]
NOTES = ["", "", "", "", "", "", "", "pairing on the release", "thanks for the review", "covered my shift",
         "walked me through the budget", "lent the projector"]


class Organisation:
    """`n_members` people in `n_circles` circles (nested two levels), each in one or two circles;
    people exchange mostly inside their circles, sometimes across."""

    def __init__(self, n_members: int = 2000, n_circles: int = 60, seed: int = 42) -> None:
        self.rnd = random.Random(seed)
        self.circles = [f"circle-{i:02d}" for i in range(n_circles)]
        self.parents = {c: (None if i < 10 else self.circles[i % 10]) for i, c in enumerate(self.circles)}
        self.members = [f"member-{i:04d}" for i in range(n_members)]
        self.circles_of: dict[str, list[str]] = {}
        self.in_circle: dict[str, list[str]] = {c: [] for c in self.circles}
        for i, m in enumerate(self.members):
            mine = [self.circles[i % n_circles]]
            if i % 3 == 0:
                mine.append(self.circles[(i * 7 + 3) % n_circles])
            self.circles_of[m] = sorted(set(mine))
            for c in self.circles_of[m]:
                self.in_circle[c].append(m)

    def directory(self) -> list[Event]:
        events: list[Event] = [CircleFormed(circle_id=c, name=f"Circle {c[-2:]}", parent=self.parents[c])
                               for c in self.circles]
        events += [MemberRegistered(member_id=m, name=Sealed.clear(f"Member {m[-4:]}", [m]),
                                    email=Sealed.clear(f"{m}@example.org", [m]), circles=self.circles_of[m])
                   for m in self.members]
        return events

    def exchanges(self, n: int, today: date | None = None) -> Iterator[ExchangeRecorded]:
        rnd = self.rnd
        today = today or datetime.now(UTC).date()
        made = 0
        while made < n:
            giver = rnd.choice(self.members)
            if rnd.random() < 0.8:  # mostly inside one of the giver's circles
                pool = self.in_circle[rnd.choice(self.circles_of[giver])]
                receiver = rnd.choice(pool)
                if receiver == giver:
                    receiver = rnd.choice(self.members)
            else:
                receiver = rnd.choice(self.members)
            if receiver == giver:
                continue
            made += 1
            yield ExchangeRecorded(
                exchange_id="x-" + uuid.UUID(int=rnd.getrandbits(128)).hex[:16],
                giver=giver, receiver=receiver, kind=rnd.choices(EXCHANGE_KINDS, KIND_WEIGHTS)[0],
                minutes=min(1440, max(5, int(rnd.lognormvariate(3.6, 0.7)))),
                occurred_on=today - timedelta(days=int(rnd.triangular(0, 365, 0))),
                giver_circles=self.circles_of[giver], receiver_circles=self.circles_of[receiver],
                note=Sealed.clear(rnd.choice(NOTES), [giver, receiver]),
                recorded_by=giver if rnd.random() < 0.7 else receiver,
            )  # fmt: skip


def outgoing(events: Iterator[Event] | list[Event]) -> Iterator[Outgoing]:
    for event in events:
        yield Outgoing.event(event.TOPIC, wrap(event, producer="ledger"))
