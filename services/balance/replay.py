"""Blue/green rebuild of the balance read models from offset 0 (`reciprocity replay balance`).

1. A new `building` generation is created (retired and unfinished ones are deleted first).
2. Every committed record of ledger.directory and ledger.exchanges up to the end offsets taken at the
   start is read and applied in batches through the same BalanceProjection code as the live service,
   into the new generation only. The active generation keeps serving and the live service keeps
   projecting into it meanwhile.
3. Verification: every partition's stored offset reached the end offsets (lag 0), and the counters
   equal a direct recount of the exchanges table by status.
4. Switch in one transaction: old -> retired, new -> active. A running service notices at its next batch
   (StaleBatch), or within seconds on an idle partition (its loop confirms idle positions now and then),
   and goes on from the new generation's offsets, so events it projected into the old generation during
   the replay are projected into the new one too.

No policy is evaluated during a replay and nothing is published: signal state is shared across
generations (it mirrors what was published), and half-built numbers would raise false alarms. After
the switch the live service evaluates members against the new generation with the state it had, so a
replay raises no new signal; where one would be raised anyway its deterministic id equals the earlier.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from reciprocity.contracts.envelope import ContractError, decode
from reciprocity.contracts.events import ExchangeRecorded
from reciprocity.messaging.consumer import Delivered, OffsetRange, PartitionKey
from reciprocity.messaging.inspect import end_offsets, read_all
from sqlalchemy.engine import Engine

from . import tables as t
from .generations import start_building, switch_to
from .projection import BalanceProjection

SOURCE_TOPICS = ("ledger.directory", "ledger.exchanges")


class VerificationFailed(RuntimeError):
    pass


@dataclass
class ReplayResult:
    generation: int
    retired: int | None
    events: int
    dead_letters: int
    seconds: float
    ends: dict[PartitionKey, int]
    checks: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def replay(
    engine: Engine,
    bootstrap: str,
    *,
    topic_prefix: str = "",
    batch_size: int = 20000,
    progress: Callable[[int, int], None] | None = None,
    switch: bool = True,
) -> ReplayResult:
    """Build a new generation from the log, verify it and (with `switch`) make it active."""
    began = time.perf_counter()
    with engine.begin() as conn:
        gen = start_building(conn)
    ends = end_offsets(bootstrap, SOURCE_TOPICS, topic_prefix=topic_prefix)
    total = sum(ends.values())
    projection = BalanceProjection(engine, generation=gen)
    cursor: dict[PartitionKey, int] = {}
    batch: list[Delivered] = []
    ranges: dict[PartitionKey, OffsetRange] = {}
    done = events = dead = recorded = 0

    def flush() -> None:
        nonlocal batch, ranges
        if ranges:
            projection.apply(batch, ranges)
            for key, span in ranges.items():
                cursor[key] = span.next
        batch, ranges = [], {}

    for done, record in enumerate(read_all(bootstrap, SOURCE_TOPICS, topic_prefix=topic_prefix), start=1):
        key = (record.topic, record.partition)
        span = ranges.get(key)
        ranges[key] = OffsetRange(first=span.first if span else cursor.get(key, 0), next=record.offset + 1)
        try:
            envelope, event = decode(record.value)
        except ContractError:
            dead += 1  # the live consumer dead-lettered it already; a replay does not again
        else:
            batch.append(Delivered(record.topic, record.partition, record.offset, envelope, event))
            events += 1
            recorded += isinstance(event, ExchangeRecorded)
        if len(batch) >= batch_size:
            flush()
            if progress:
                progress(done, total)
    flush()
    # Transaction markers sit at offsets no record is returned for: move every partition to the end.
    for key, end in ends.items():
        if cursor.get(key, 0) < end:
            projection.load_offsets([key])
            projection.apply([], {key: OffsetRange(first=cursor.get(key, 0), next=end)})
            cursor[key] = end
    if progress:
        progress(total, total)

    checks = verify(engine, gen, ends, recorded - projection.repeated["ExchangeRecorded"])
    retired = None
    if switch:
        with engine.begin() as conn:
            retired = switch_to(conn, gen)
    return ReplayResult(gen, retired, events, dead, time.perf_counter() - began, ends, checks)


def verify(engine: Engine, gen: int, ends: dict[PartitionKey, int], recorded: int) -> dict[str, tuple[int, int]]:
    """Compare the counters with a direct recount of the exchanges; raise VerificationFailed if any differs."""
    x, md, pd = t.exchanges.c, t.member_day.c, t.pair_day.c
    with engine.connect() as conn:
        stored = {(r.topic, r.partition): r.next_offset
                  for r in conn.execute(sa.select(t.offsets).where(t.offsets.c.generation == gen))}
        by_status = {r.status: (int(r.minutes or 0), int(r.n)) for r in conn.execute(
            sa.select(x.status, sa.func.sum(x.minutes).label("minutes"), sa.func.count().label("n"))
            .where(x.generation == gen).group_by(x.status))}
        m = conn.execute(sa.select(*[sa.func.coalesce(sa.func.sum(md[c]), 0) for c in t.MEMBER_DAY_COUNTERS])
                         .where(md.generation == gen)).one()
        p = conn.execute(sa.select(*[sa.func.coalesce(sa.func.sum(pd[c]), 0) for c in t.PAIR_DAY_COUNTERS])
                         .where(pd.generation == gen)).one()
    settled_min, settled_n = by_status.get("acknowledged", (0, 0))
    pending_min, pending_n = by_status.get("recorded", (0, 0))
    given_min, given_n, recv_min, recv_n, pg_min, pg_n, pr_min, pr_n = (int(v) for v in m)
    checks = {
        "lag": (sum(max(end - stored.get(k, 0), 0) for k, end in ends.items()), 0),
        "exchanges": (sum(n for _, n in by_status.values()), recorded),
        "settled minutes given": (given_min, settled_min),
        "settled minutes received": (recv_min, settled_min),
        "settled count": (given_n, settled_n),
        "settled count received": (recv_n, settled_n),
        "pending minutes given": (pg_min, pending_min),
        "pending minutes received": (pr_min, pending_min),
        "pending count": (pg_n, pending_n),
        "pending count received": (pr_n, pending_n),
        "pair flow minutes": (int(p[0]), settled_min),
        "pair flow count": (int(p[1]), settled_n),
        "pair pending minutes": (int(p[2]), pending_min),
        "pair pending count": (int(p[3]), pending_n),
    }
    wrong = {name: pair for name, pair in checks.items() if pair[0] != pair[1]}
    if wrong:
        raise VerificationFailed(f"generation {gen} does not add up: {wrong}")
    return checks
