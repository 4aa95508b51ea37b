"""Blue/green rebuild of the balance read models from offset 0 (`reciprocity replay balance`).

1. A new `building` generation is created (retired and unfinished ones are deleted first).
2. Every committed record of ledger.directory and ledger.exchanges up to the end offsets taken at the
   start is read and applied in batches through the same BalanceProjection code as the live service,
   into the new generation only. The active generation keeps serving and the live service keeps
   projecting into it meanwhile.
3. Verification: every partition's stored offset reached the end offsets (lag 0), the exchanges are
   the recordings applied, and the circles' counters equal a direct recount of the exchanges table.
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

import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import groupby, islice

import sqlalchemy as sa
from reciprocity.common.sealing import Opener
from reciprocity.contracts.envelope import ContractError
from reciprocity.contracts.topics import BALANCE_READS, dlq_topic
from reciprocity.contracts.vocabulary import ACKNOWLEDGED, RECORDED
from reciprocity.messaging.consumer import Delivered, OffsetRange, PartitionKey, RawBytes, to_batch
from reciprocity.messaging.event_log import EventLog, Outgoing
from reciprocity.messaging.inspect import end_offsets, read_all
from reciprocity.messaging.poison import PARKED, apply_parking_poison, describe_failure, dlq_headers
from sqlalchemy.engine import Engine

from . import tables as t
from .dead_letters import read_dead_letters
from .generations import mark_built, mark_failed, replay_lock, start_building, switch_to
from .projection import BalanceProjection
from .projector import RECORDINGS, decode_for_projection

REPLAY_CONSUMER = "balance-replay"  # names the replay in the headers of what it parks

log = logging.getLogger(__name__)


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
    opener: Opener | None = None,
) -> ReplayResult:
    """Build a new generation from the log, verify it and (with `switch`) make it active.

    Poison does not stop it: a record that is not a valid event, or whose projection fails on its own,
    is parked in `<topic>.dlq` as the live consumer does (unless it is parked there already) and left
    out of the sums and of the verification. Any failure (Kafka or the database out of reach,
    a verification that does not add up, an interrupt) drops the unfinished generation's rows and marks
    it `failed`, so nothing shows a replay still building; the active generation serves on."""
    with replay_lock(engine):  # ReplayRunning if another replay builds now
        with engine.begin() as conn:
            gen = start_building(conn)
        dead_letters = _ReplayDeadLetters(bootstrap, topic_prefix)
        try:
            return _replay_into(engine, gen, bootstrap, topic_prefix=topic_prefix, batch_size=batch_size,
                                progress=progress, switch=switch, dead_letters=dead_letters, opener=opener)
        except BaseException as err:
            abandon(engine, gen, err)
            raise
        finally:
            dead_letters.close()


class _ReplayDeadLetters:
    """Parks what the replay cannot apply, on a producer made only if something is parked."""

    def __init__(self, bootstrap: str, topic_prefix: str) -> None:
        self._bootstrap, self._prefix = bootstrap, topic_prefix
        self._log: EventLog | None = None
        self._known: set[tuple[str, str | None, str | None]] | None = None
        self.parked: Counter[str] = Counter()  # by event type ("" for unreadable records)

    def park(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes, error: str,
             why: str, event_type: str = "") -> None:
        self.parked[event_type] += 1
        if self._known is None:  # what is parked already (by the live consumer, an earlier replay)
            letters = read_dead_letters(self._bootstrap, self._prefix, [dlq_topic(t) for t in BALANCE_READS])
            self._known = {(d.source, d.header("dlq.source.partition"), d.header("dlq.source.offset"))
                           for d in letters}
        if (topic, str(partition), str(offset)) in self._known:
            return
        if self._log is None:
            self._log = EventLog(self._bootstrap, client_id="balance-replay", topic_prefix=self._prefix)
        consumer = f"{self._prefix}{REPLAY_CONSUMER}"
        log.warning("replay parks %s[%d]@%d in %s: %s", topic, partition, offset, dlq_topic(topic), error)
        self._log.append([Outgoing(topic=dlq_topic(topic), key=key, value=value,
                                   headers=dlq_headers(topic, partition, offset, error, consumer))])
        PARKED.labels(topic, consumer, why).inc()
        self._known.add((topic, str(partition), str(offset)))

    def park_event(self, event: Delivered, err: BaseException) -> None:
        self.park(event.topic, event.partition, event.offset, event.raw_key, event.raw_value or b"",
                  f"projection failed: {describe_failure(err)}", "unprojectable", event.envelope.type)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()


def abandon(engine: Engine, gen: int, cause: BaseException) -> None:
    """Drop an unfinished generation's rows and mark it failed; best effort (the database may be what
    failed: then the next replay deletes it when it starts)."""
    # Logged at INFO: the caller (the CLI) says in one line why the replay failed.
    try:
        with engine.begin() as conn:
            mark_failed(conn, gen)
    except Exception as err:
        log.info("replay into generation %d failed and could not be marked failed: %r", gen, err)
        return
    for table in t.GENERATION_TABLES:  # one by one: the table that failed may fail again
        try:
            with engine.begin() as conn:
                conn.execute(sa.delete(table).where(table.c.generation == gen))
        except Exception as err:  # the next replay deletes them when it starts
            log.info("the rows of failed generation %d in %s could not be dropped yet: %r", gen, table.name, err)


def _replay_into(engine: Engine, gen: int, bootstrap: str, *, topic_prefix: str, batch_size: int,
                 progress: Callable[[int, int], None] | None, switch: bool,
                 dead_letters: _ReplayDeadLetters, opener: Opener | None) -> ReplayResult:
    began = time.perf_counter()
    ends = end_offsets(bootstrap, BALANCE_READS, topic_prefix=topic_prefix)
    total = sum(ends.values())
    # A fresh opener: its cache starts empty, so every key is asked of the ledger again, and the keys of
    # forgotten members are not there to ask for: the new generation is as anonymised as the old one.
    projection = BalanceProjection(engine, generation=gen, opener=opener)
    cursor: dict[PartitionKey, int] = {}
    done = events = dead = recorded = 0

    def unreadable(key: PartitionKey, record: RawBytes, err: ContractError) -> None:
        nonlocal dead
        dead += 1
        dead_letters.park(key[0], key[1], record.offset, record.key, record.value, str(err), "unreadable")

    records = read_all(bootstrap, BALANCE_READS, topic_prefix=topic_prefix)
    while chunk := list(islice(records, batch_size)):
        runs = ((key, list(run)) for key, run in groupby(chunk, key=lambda r: (r.topic, r.partition)))
        batch, ranges = to_batch(runs, lambda key: cursor.get(key, 0), unreadable, decode_for_projection)
        apply_parking_poison(projection, batch, ranges, dead_letters.park_event)
        for key, span in ranges.items():
            cursor[key] = span.next
        events += len(batch)
        recorded += sum(isinstance(d.event, RECORDINGS) for d in batch)
        done += len(chunk)
        if progress and len(chunk) == batch_size:
            progress(done, total)
    # Transaction markers sit at offsets no record is returned for: move every partition to the end.
    for key, end in ends.items():
        if cursor.get(key, 0) < end:
            projection.load_offsets([key])
            projection.apply([], {key: OffsetRange(first=cursor.get(key, 0), next=end)})
            cursor[key] = end
    if progress:
        progress(total, total)

    unprojectable = sum(n for kind, n in dead_letters.parked.items() if kind)
    recorded -= dead_letters.parked["ExchangeRecorded"] + projection.repeated["ExchangeRecorded"]
    checks = verify(engine, gen, ends, recorded)
    retired = None
    with engine.begin() as conn:
        if switch:
            retired = switch_to(conn, gen)
        else:
            mark_built(conn, gen)
    return ReplayResult(gen, retired, events - unprojectable, dead + unprojectable, time.perf_counter() - began, ends,
                        checks)


def verify(engine: Engine, gen: int, ends: dict[PartitionKey, int], recorded: int) -> dict[str, tuple[int, int]]:
    """Compare the exchanges with the recordings applied, and the circles' counters with a direct recount
    of the exchanges by status and circles; raise VerificationFailed if any differs. (A member's numbers
    are summed from the exchanges when read: they have no counters of their own to check.)"""
    x, cd = t.exchanges.c, t.circle_day.c
    with engine.connect() as conn:
        stored = t.positions.next_offsets(conn, generation=gen)
        by_status = {r.status: int(r.n) for r in conn.execute(
            sa.select(x.status, sa.func.count().label("n")).where(x.generation == gen).group_by(x.status))}
        # Circle lists repeat across thousands of exchanges: the database groups, Python expands.
        expected = dict.fromkeys(t.CIRCLE_DAY_COUNTERS, 0)
        for r in conn.execute(
            sa.select(x.status, x.giver_circles, x.receiver_circles, sa.func.sum(x.minutes).label("minutes"),
                      sa.func.count().label("n"))
            .where(x.generation == gen, x.status.in_((ACKNOWLEDGED, RECORDED)))
            .group_by(x.status, x.giver_circles, x.receiver_circles)):
            pending = "" if r.status == ACKNOWLEDGED else "pending_"
            giver_circles, receiver_circles = set(json.loads(r.giver_circles)), set(json.loads(r.receiver_circles))
            for circle in giver_circles | receiver_circles:
                where = "inside" if circle in giver_circles and circle in receiver_circles else "crossing"
                expected[f"{pending}{where}_count"] += int(r.n)
                expected[f"{pending}{where}_minutes"] += int(r.minutes or 0)
        counted = conn.execute(sa.select(*[sa.func.coalesce(sa.func.sum(cd[c]), 0) for c in t.CIRCLE_DAY_COUNTERS])
                               .where(cd.generation == gen)).one()
    checks = {
        "lag": (sum(max(end - stored.get(k, 0), 0) for k, end in ends.items()), 0),
        "exchanges": (sum(by_status.values()), recorded),
        **{f"circles' {c.replace('_', ' ')}": (int(got), expected[c])
           for c, got in zip(t.CIRCLE_DAY_COUNTERS, counted, strict=True)},
    }
    wrong = {name: pair for name, pair in checks.items() if pair[0] != pair[1]}
    if wrong:
        raise VerificationFailed(f"generation {gen} does not add up: {wrong}")
    return checks
