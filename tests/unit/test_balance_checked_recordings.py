"""Recordings read as checked structs (projector.decode_for_projection, what balance's consumer uses) project
exactly as the pydantic models do: the same events, fed once through each decoder, leave the same rows
in every read-model table, forgotten members' words included."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from reciprocity.balance import tables as t
from reciprocity.balance.db import make_engine, migrate
from reciprocity.balance.projection import BalanceProjection
from reciprocity.contracts.envelope import Envelope, decode
from reciprocity.contracts.events import Event, ExchangeRecorded, ExchangeSharingChanged, MemberForgotten
from reciprocity.contracts.fastcodec import checked_struct

from tests.support.events import Exchange, Feeder, circle, envelope, member

MEMBERS = [f"m{i:02d}" for i in range(12)]


def _batches() -> list[list[tuple[Envelope, Event]]]:
    """Directory, recordings settled in their batch or a later one, consent to the wall, a forgetting: as
    envelopes made once (ids and times), so both decoders read the very same records."""
    rnd = random.Random(11)
    circles = {m: [f"c{i % 3}"] + ([f"c{(i + 1) % 3}"] if i % 4 == 0 else []) for i, m in enumerate(MEMBERS)}
    directory = [circle("c0"), circle("c1"), circle("c2"), *(member(m, circles[m]) for m in MEMBERS)]
    batches: list[list[Event]] = [directory]
    earlier: list[Exchange] = []
    for _ in range(6):
        batch: list[Event] = []
        for _ in range(40):
            giver, receiver = rnd.sample(MEMBERS, 2)
            x = Exchange(giver, receiver, rnd.randint(5, 120), date.today() - timedelta(days=rnd.randint(0, 60)),
                         rnd.choice(["help", "mentoring", "feedback", "care"]), giver_circles=circles[giver],
                         receiver_circles=circles[receiver], note=rnd.choice(["", "thanks", "a long afternoon"]),
                         shared=rnd.random() < 0.5)
            batch.append(x.recorded())
            fate = rnd.random()  # settled in the batch that recorded it, or left for a later one
            if fate < 0.3:
                batch.append(x.acknowledged(thanks="merci", shared=True))
                batch.append(ExchangeSharingChanged(**x.facts, by=x.facts["giver"], shared=True))
            elif fate < 0.4:
                batch.append(x.disputed())
            elif fate < 0.5:
                batch.append(x.withdrawn())
            else:
                earlier.append(x)
        while earlier and rnd.random() < 0.6:
            batch.append(earlier.pop(rnd.randrange(len(earlier))).acknowledged(thanks="later"))
        batches.append(batch)
    batches.insert(4, [MemberForgotten(member_id=MEMBERS[3], requested_by="ops")])
    start = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    return [[(envelope(e, start + timedelta(minutes=i)), e) for e in batch] for i, batch in enumerate(batches)]


def _tables(tmp: Path, name: str, batches: list[list[tuple[Envelope, Event]]],
            decoder) -> dict[str, list[tuple]]:  # type: ignore[no-untyped-def, type-arg]
    engine = make_engine(f"sqlite:///{tmp / name}.db")
    migrate(engine)
    feeder = Feeder(BalanceProjection(engine), partition=0, decoder=decoder)
    kinds: list[bool] = []
    for batch in batches:
        kinds += [type(d.event) is checked_struct(ExchangeRecorded) for d in feeder.feed(batch)]
    with engine.connect() as conn:
        found = {table.name: sorted(map(tuple, conn.execute(sa.select(table)).all()), key=repr)
                 for table in t.metadata.sorted_tables if table is not t.generations}  # made at start-up
    engine.dispose()
    found["(read as checked structs)"] = [(sum(kinds),)]
    return found


def test_recordings_project_alike_through_either_decoder(tmp_path: Path) -> None:
    batches = _batches()
    checked = _tables(tmp_path, "checked", batches, None)  # the Feeder's default for balance: decode_for_projection
    models = _tables(tmp_path, "models", batches, decode)
    assert checked.pop("(read as checked structs)") == [(240,)] and models.pop("(read as checked structs)") == [(0,)]
    assert checked == models
    notes = {r[1]: r[6] for r in checked["balance_exchanges"]}
    assert len(notes) == 240 and any(notes.values())
    # Recorded after the forgetting, with a note, about the forgotten member: read blank (the opener's
    # copy of a checked struct), as the model's copy reads.
    forgotten = MEMBERS[3]
    after = [e.exchange_id for batch in batches[5:] for _, e in batch
             if isinstance(e, ExchangeRecorded) and forgotten in (e.giver, e.receiver) and e.note]
    assert after and all(notes[x] == "" for x in after)
