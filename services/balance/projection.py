"""The balance projection: applies a polled batch in one transaction, offsets included.

`BalanceProjection` implements messaging.consumer.Projection. Per batch: compare-and-set the stored
offsets (messaging.tracking; StaleBatch when another consumer got there first), read the status of the exchanges whose
lifecycle moves, turn the events into aggregated deltas (projector.project, pure), write them with
set-based upserts (one statement per table, one row per key), evaluate the alert policy for the members
the batch touched, and commit. Signals decided in the transaction sit in the outbox and are appended
to Kafka after the commit.

It is also a messaging.consumer.HoldingProjection: while catching up, `hold` applies polls into one
transaction left open and `commit` ends it (the alert policy then judges every member the transaction
touched, once, just before the commit, so nothing is judged in a transaction that is rolled back).

A catch-up into a store holding no exchanges at all (a first start on an existing log, a new store) on
SQLite drops the two side indexes of the exchanges (tables.EXCHANGE_SIDE_INDEXES) in its first held
transaction and builds them again, sorted once, in the transaction that ends the catch-up: kept up to
date, each batch's random keys dirty pages all over them, more so as the store grows (300k events: 55 µs
CPU an event over the last 100k with them, 31 without). They are absent only while catching up: a commit
that ends it, a rollback, a poll applied on its own build them again, and so does the start-up
(`db.migrate`) after a crash. Meanwhile the reads that use them scan the table (slower; /health does
not say so, /v1/projection/status shows the lag). Not on PostgreSQL (it holds polls, keeping its
indexes), nor for a replay: its generation shares the tables, and their indexes, with the active one.

A held poll's new exchanges are written by a writer thread while the consumer fetches and decodes the
next poll. On PostgreSQL the server inserts each row (its heap and four indexes) as the client streams it,
and the client used to wait for that, ~20 µs an event, doing nothing. On SQLite the rows are staged in a
temp table by the consumer's thread (sqlite3 binds them holding the interpreter lock), and the writer
inserts them from there in one statement that SQLite runs without it (common.bulk_sql.RowInsert.begin).
The next poll, the commit and the rollback wait for the write first (one connection, one thread at a
time on it); a failed write fails whichever of them comes next, and the transaction is rolled back as if
the poll had failed.

On SQLite a held transaction's commit does not checkpoint the WAL itself (`wal_autocheckpoint` is off on
its connection until it ends): a thread of its own checkpoints after the commit, on its own connection,
while the consumer goes on. PASSIVE: it copies what it can without waiting for, or stopping, the next
transaction's writes. A checkpoint copies each page the transaction wrote into the database file, 2.6 µs
an event that the consumer's thread spent in its commit (1,000,000 events held in process).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from reciprocity.common.bulk_sql import CounterUpsert, RowInsert, dialect_insert, transient_error
from reciprocity.common.sealing import Opener
from reciprocity.contracts.events import MemberForgotten
from reciprocity.contracts.vocabulary import ACTIVE
from reciprocity.messaging.consumer import Delivered, OffsetRange, PartitionKey, StaleBatch
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from . import metrics
from . import tables as t
from .db import create_side_indexes
from .generations import active_generation
from .projector import EXCHANGE_EVENTS, EXCHANGE_ROW, CircleDayKey, Deltas, KnownExchange, lifecycle_ids, project

log = logging.getLogger(__name__)

_CHUNK = 500  # ids per IN (...) list


@dataclass
class _Held:
    """A transaction spanning polls: its connection, and what it did so far."""

    conn: Connection
    generation: int
    events: int = 0
    began: float = 0.0
    touched: set[str] = field(default_factory=set)
    repeated: Counter[str] = field(default_factory=Counter)
    # The circles' counters of all its polls, summed: written once, at its commit. A poll of 20,000
    # events touches ~27,000 (circle, day, kind) keys, 200,000 events ~96,000 (bench/workload.py), so
    # written a poll at a time most keys would be upserted again and again.
    circle_day: dict[CircleDayKey, list[int]] = field(default_factory=dict)
    # The side indexes were dropped in this transaction (so its rollback brings them back).
    dropped_side_indexes: bool = False
    writing: Future[None] | None = None  # the last poll's rows, still being written
    autocheckpoint: int | None = None  # SQLite: the connection's wal_autocheckpoint, off while held

    def written(self) -> None:
        """Wait for the last poll's rows to be written; raise what writing them raised."""
        writing, self.writing = self.writing, None
        if writing is not None:
            writing.result()


@dataclass(frozen=True)
class BatchRows:
    """What one batch writes: the counter and exchange rows as the driver takes them, built before the
    transaction's statements run (so the bench can time the database alone), and the deltas for the
    rest (exchange updates, directory operations)."""

    generation: int
    deltas: Deltas
    exchanges: list[tuple]
    circle_day: list[tuple]


class BalanceProjection:
    def __init__(
        self,
        engine: Engine,
        *,
        generation: int | None = None,
        signals: Any | None = None,  # signals.SignalEngine; None: no policy evaluation (replay, bench)
        after_commit: Callable[[], None] | None = None,
        opener: Opener | None = None,
    ) -> None:
        self.engine = engine
        # Opens sealed values with keys from the ledger. Without one, only clear values (events written
        # before sealing, and tests' events) can be projected; a sealed one stops the partition.
        self.opener = opener if opener is not None else Opener(None)
        self.fixed_generation = generation
        self.signals = signals
        self.after_commit = after_commit
        # The generation whose stored offsets each partition was last positioned from (see _advance_offsets).
        self._positioned_for: dict[PartitionKey, int] = {}
        # Events skipped as repeats of an applied event id, per type, in committed batches (replay checks).
        self.repeated: Counter[str] = Counter()
        self._held: _Held | None = None
        # The side indexes are absent, dropped for the catch-up under way (see the module docstring).
        self._side_indexes_dropped = False
        dialect = engine.dialect.name
        self._circle_day = CounterUpsert(t.circle_day, ("circle_id", "day", "kind"), t.CIRCLE_DAY_COUNTERS, dialect)
        self._insert_exchange = RowInsert(t.exchanges, dialect, EXCHANGE_ROW)
        # Writes a held poll's rows while the next is fetched (see the module docstring); its thread starts
        # with the first write.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="balance-writer")
        # Checkpoints the WAL after a held transaction's commit (SQLite; see the module docstring).
        self._checkpointer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="balance-checkpoint")
        self._checkpointing: Future[None] | None = None
        self._update_exchange = (
            sa.update(t.exchanges)
            .where(t.exchanges.c.generation == sa.bindparam("g_"), t.exchanges.c.exchange_id == sa.bindparam("x_"))
            .values(status=sa.bindparam("status"), thanks=sa.bindparam("thanks"),
                    dispute_reason=sa.bindparam("dispute_reason"),
                    shared_by_acknowledger=sa.bindparam("shared_by_acknowledger"),
                    updated_at=sa.bindparam("updated_at"), status_event_id=sa.bindparam("status_event_id"))
        )  # fmt: skip

    # --- Projection protocol -------------------------------------------------------------------

    def generation(self, conn: Connection) -> int:
        return self.fixed_generation if self.fixed_generation is not None else active_generation(conn)

    def load_offsets(self, partitions: Sequence[PartitionKey]) -> dict[PartitionKey, int]:
        with self.engine.connect() as conn:
            gen = self.generation(conn)
            stored = t.positions.load(conn, partitions, generation=gen)
        for key in partitions:  # the consumer seeks these partitions to this generation's offsets
            self._positioned_for[key] = gen
        return stored

    def apply(self, events: Sequence[Delivered], offsets: dict[PartitionKey, OffsetRange]) -> None:
        self._restore_side_indexes()  # a poll on its own: no longer catching up
        began = time.perf_counter()
        careful = False
        for attempt in range(6):
            try:
                with self.engine.begin() as conn:
                    deltas = self._apply_in(conn, events, offsets, careful=careful)
                if deltas is not None:
                    self.repeated.update(deltas.repeated)
                break
            except StaleBatch:
                raise
            except IntegrityError:
                if careful:
                    raise
                # An exchange id the store holds already: look up every exchange of the batch, so that a
                # repeated recording is skipped (and any other one fails as a ProjectionError).
                careful = True
            except DBAPIError as err:
                if attempt == 5 or not transient_error(err):
                    raise
                log.info("transient database error (%s); retrying the batch", err.orig)
                time.sleep(0.05 * (attempt + 1))
        self._committed(len(events), began)

    def hold(self, events: Sequence[Delivered], offsets: dict[PartitionKey, OffsetRange]) -> None:
        """Apply `events` into the transaction spanning polls (begun if none is open), uncommitted. Any
        failure rolls back all of it: the consumer reads it again, a poll per transaction (whose retries
        and careful lookups `apply` does)."""
        held = self._held
        if held is None:
            conn = self.engine.connect()
            try:
                conn.begin()
                held = _Held(conn, self.generation(conn), began=time.perf_counter())
                if conn.dialect.name == "sqlite":
                    held.autocheckpoint = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one()
                    conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
                if not self._side_indexes_dropped and self._without_exchanges(conn):
                    for index in t.EXCHANGE_SIDE_INDEXES:
                        conn.execute(sa.schema.DropIndex(index))
                    self._side_indexes_dropped = held.dropped_side_indexes = True
            except BaseException:
                conn.rollback()
                conn.close()
                raise
            self._held = held
        try:
            held.written()
            deltas = self._apply_in(held.conn, events, offsets, judge=False, circle_day=held.circle_day,
                                    write=self._write_behind_for(held))
        except BaseException:
            self.rollback()
            raise
        held.events += len(events)
        if deltas is not None:
            held.touched |= deltas.touched_members
            held.repeated.update(deltas.repeated)

    def commit(self, *, caught_up: bool = True) -> None:
        """Commit the transaction spanning polls. `caught_up=False`: a size or time bound while still far
        behind, so side indexes dropped for the catch-up stay dropped; otherwise they are built again in
        this transaction (or in one of their own if none is open)."""
        held, self._held = self._held, None
        if held is None:
            if caught_up:
                self._restore_side_indexes()
            return
        try:
            held.written()
            self._circle_day.execute(held.conn, self._circle_day.rows(held.generation, held.circle_day))
            if caught_up and self._side_indexes_dropped:
                create_side_indexes(held.conn)  # before the judging, which reads through them
            if self.signals is not None:
                self.signals.after_batch(held.conn, held.generation, held.touched)
            held.conn.commit()
        except BaseException:
            self._rolled_back(held)
            raise
        self._release(held)
        if held.autocheckpoint is not None:
            self._checkpoint_behind()
        if caught_up:
            self._side_indexes_dropped = False
        self.repeated.update(held.repeated)
        self._committed(held.events, held.began)

    def rollback(self) -> None:
        """Roll back the transaction spanning polls, if any; side indexes dropped for the catch-up come
        back either way (with the transaction that dropped them, or built again)."""
        held, self._held = self._held, None
        if held is not None:
            self._rolled_back(held)
        else:
            self._restore_side_indexes()

    def _rolled_back(self, held: _Held) -> None:
        try:
            held.written()
        except Exception as err:  # rolled back anyway
            log.info("rolling back after a failed write: %r", err)
        try:
            held.conn.rollback()
        finally:  # a connection that is gone took its transaction with it
            self._release(held)
            if held.dropped_side_indexes:
                self._side_indexes_dropped = False
        self._restore_side_indexes()

    def _release(self, held: _Held) -> None:
        """Return the held transaction's connection to the pool as it was lent (its autocheckpoint back on)."""
        try:
            if held.autocheckpoint is not None and not held.conn.invalidated:
                held.conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint={int(held.autocheckpoint)}")
        finally:
            held.conn.close()

    def _checkpoint_behind(self) -> None:
        """Checkpoint the WAL in the checkpoint thread, unless a checkpoint is still running there (the one
        after the next commit takes what this one would have)."""
        if self._checkpointing is None or self._checkpointing.done():
            self._checkpointing = self._checkpointer.submit(self._checkpoint)

    def _checkpoint(self) -> None:
        try:
            # The driver's own connection: SQLAlchemy's would begin a transaction (BEGIN IMMEDIATE here,
            # common.db), and a checkpoint runs outside any.
            connection = self.engine.raw_connection()
            try:
                connection.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                connection.close()
        except Exception as err:  # the next one, or a connection's autocheckpoint, does it later
            log.warning("checkpoint after a held commit failed: %r", err)

    def _write_behind_for(self, held: _Held) -> Callable[[Connection, BatchRows], None]:
        """How a held poll's rows are written: what needs the interpreter now, the rest by the writer thread."""

        def write_behind(conn: Connection, rows: BatchRows) -> None:
            insert_exchanges = self._insert_exchange.begin(conn, rows.exchanges)
            held.writing = self._writer.submit(self.write_rows, conn, rows, insert_exchanges)

        return write_behind

    def _without_exchanges(self, conn: Connection) -> bool:
        """A catch-up that may build the side indexes at its end: SQLite, the active generation's projection
        (a replay's generation shares the indexes with the active one), and no exchange in the store."""
        return (conn.dialect.name == "sqlite" and self.fixed_generation is None
                and conn.execute(sa.select(sa.literal(1)).select_from(t.exchanges).limit(1)).first() is None)

    def _restore_side_indexes(self) -> None:
        if self._side_indexes_dropped:
            with self.engine.begin() as conn:
                create_side_indexes(conn)
            self._side_indexes_dropped = False

    def _committed(self, events: int, began: float) -> None:
        metrics.EVENTS_APPLIED.inc(events)
        metrics.BATCHES.inc()
        metrics.APPLY_SECONDS.observe(time.perf_counter() - began)
        if self.after_commit is not None:
            try:
                self.after_commit()
            except Exception as err:  # publishing is retried by the sweep loop; the batch is committed
                log.warning("after-commit hook failed: %r", err)

    # --- inside the transaction ----------------------------------------------------------------

    def _apply_in(self, conn: Connection, events: Sequence[Delivered],
                  offsets: Mapping[PartitionKey, OffsetRange], *, careful: bool = False,
                  judge: bool = True, circle_day: dict[CircleDayKey, list[int]] | None = None,
                  write: Callable[[Connection, BatchRows], None] | None = None) -> Deltas | None:
        """The batch's work in `conn`'s transaction; `judge`: the alert policy evaluates the members it
        touched (not when held: `commit` does for the whole transaction); `circle_day`: the held
        transaction's counters, which this batch adds to instead of writing its own (`commit` writes them);
        `write`: how its rows are written (`write_rows` by default)."""
        gen = self.generation(conn)
        latest: dict[PartitionKey, datetime] = {}
        for e in events:
            key = (e.topic, e.partition)
            at = e.envelope.occurred_at
            if key not in latest or at > latest[key]:
                latest[key] = at
        self._advance_offsets(conn, gen, offsets, latest)
        if not events:
            # An empty span (past the ledger's commit markers) can be what reaches the log's end as it was
            # at start: the signal engine must hear of it, or after a restart that finds only markers left
            # nobody is judged until the next full sweep (found by `make chaos`).
            if self.signals is not None and judge:
                self.signals.after_batch(conn, gen, set())
            return None
        evs = [d.event for d in events]
        known = self._known_exchanges(conn, gen, lifecycle_ids(evs, all_exchanges=careful))
        applied = self._applied_directory(conn, gen, [str(d.envelope.event_id) for d in events
                                                      if not isinstance(d.event, EXCHANGE_EVENTS)])
        # Forgotten members, known to the store (another process may have applied the forgetting) or
        # forgotten in this batch: nothing sealed for them is opened, even with a key still in the cache.
        for member_id in self._forgotten_members(conn, gen, events):
            self.opener.forget(member_id)
        opened = self.opener.open_events([(d.envelope.event_id, d.event) for d in events])
        deltas = project(zip((d.envelope for d in events), opened, strict=True), known, applied,
                         circle_day=circle_day)
        if deltas.repeated:
            log.info("skipped, their event id applied before: %s", dict(deltas.repeated))
        (write or self.write_rows)(conn, self.rows(gen, deltas, counters=circle_day is None))
        if self.signals is not None and judge:
            self.signals.after_batch(conn, gen, deltas.touched_members)
        return deltas

    def _advance_offsets(self, conn: Connection, gen: int, offsets: Mapping[PartitionKey, OffsetRange],
                         latest: Mapping[PartitionKey, datetime]) -> None:
        """Compare-and-set of the stored offsets (reciprocity.messaging.tracking), in this generation.

        A generation switch (replay) is caught first: a partition positioned from another generation's
        offsets than the active one is stale, so the consumer seeks to the new ones.
        """
        if self.fixed_generation is None:
            for key in sorted(offsets):
                if self._positioned_for.get(key) != gen:
                    raise StaleBatch(f"{key[0]}[{key[1]}] was positioned for generation "
                                     f"{self._positioned_for.get(key)}, generation {gen} is active")
        t.positions.advance(conn, offsets, latest=latest, generation=gen)

    def _known_exchanges(self, conn: Connection, gen: int, ids: set[str]) -> dict[str, KnownExchange]:
        x = t.exchanges.c
        found: dict[str, KnownExchange] = {}
        ordered = sorted(ids)
        for i in range(0, len(ordered), _CHUNK):
            rows = conn.execute(
                sa.select(x.exchange_id, x.status, x.recorded_event_id, x.status_event_id, x.recorded_by,
                          x.correction)
                .where(x.generation == gen, x.exchange_id.in_(ordered[i:i + _CHUNK]))
            )
            found.update({r.exchange_id: KnownExchange(r.status, frozenset(filter(None, (
                r.recorded_event_id, r.status_event_id, _correction_event_id(r.correction)))), r.recorded_by)
                for r in rows})
        return found

    def _applied_directory(self, conn: Connection, gen: int, event_ids: list[str]) -> set[str]:
        c = t.directory_applied.c
        found: set[str] = set()
        for i in range(0, len(event_ids), _CHUNK):
            found.update(conn.execute(sa.select(c.event_id).where(
                c.generation == gen, c.event_id.in_(event_ids[i:i + _CHUNK]))).scalars())
        return found

    def _forgotten_members(self, conn: Connection, gen: int, events: Sequence[Delivered]) -> set[str]:
        found = {d.event.member_id for d in events if isinstance(d.event, MemberForgotten)}
        found.update(conn.execute(sa.select(t.forgotten.c.member_id).where(t.forgotten.c.generation == gen))
                     .scalars())
        return found

    def write(self, conn: Connection, gen: int, d: Deltas) -> None:
        self.write_rows(conn, self.rows(gen, d))

    def rows(self, gen: int, d: Deltas, *, counters: bool = True) -> BatchRows:
        """`counters=False`: the circles' counters are left out (a held transaction writes its own)."""
        return BatchRows(gen, d, self._insert_exchange.rows(gen, d.new_exchanges.values()),
                         self._circle_day.rows(gen, d.circle_day) if counters else [])

    def write_rows(self, conn: Connection, r: BatchRows, insert_exchanges: Callable[[], None] | None = None) -> None:
        """`insert_exchanges`: the rest of an insert of `r.exchanges` begun by the caller (RowInsert.begin)."""
        gen, d = r.generation, r.deltas
        # A plain INSERT: an exchange id recorded twice violates the key and fails the batch.
        if insert_exchanges is None:
            self._insert_exchange.execute(conn, r.exchanges)  # PostgreSQL: one COPY, sorted by key (bulk_sql)
        else:
            insert_exchanges()
        transitions = {xid: u for xid, u in d.exchange_updates.items() if "status" in u}
        if transitions:
            conn.execute(self._update_exchange, [
                {"g_": gen, "x_": xid, "thanks": None, "dispute_reason": None, "shared_by_acknowledger": False,
                 "status_event_id": None, **{k: v for k, v in u.items() if k in _TRANSITION_COLUMNS}}
                for xid, u in sorted(transitions.items())
            ])
        # Changes outside a transition (consent to the wall, corrections): rare, one statement each.
        for xid, u in sorted(d.exchange_updates.items()):
            rest = {k: v for k, v in u.items() if k not in _TRANSITION_COLUMNS or "status" not in u}
            if rest:
                conn.execute(sa.update(t.exchanges).where(t.exchanges.c.generation == gen,
                                                          t.exchanges.c.exchange_id == xid).values(**rest))
        self._circle_day.execute(conn, r.circle_day)
        for op, run in _runs(d.directory):
            if op == "member":
                _members(conn, gen, run)
            else:
                for values in run:
                    _DIRECTORY_OPS[op](conn, gen, values)
        if d.directory_event_ids:
            conn.execute(sa.insert(t.directory_applied),
                         [{"generation": gen, "event_id": e} for e in d.directory_event_ids])


def _correction_event_id(correction: str | None) -> str | None:
    """The latest correction's event id: a repeat of it is recognised like a repeated transition."""
    return json.loads(correction).get("event_id") if correction else None


# The columns a status transition sets, in one executemany (`_update_exchange`).
_TRANSITION_COLUMNS = frozenset({"status", "thanks", "dispute_reason", "shared_by_acknowledger", "updated_at",
                                 "status_event_id"})


# --- directory operations (rare: one statement each is fine) -----------------------------------


def _circle(conn: Connection, gen: int, v: dict[str, Any]) -> None:
    stmt = dialect_insert(conn, t.circles).values(generation=gen, leads="[]", **v)
    conn.execute(stmt.on_conflict_do_update(
        index_elements=["generation", "circle_id"],
        set_={"name": stmt.excluded.name, "parent": stmt.excluded.parent, "policy": stmt.excluded.policy},
    ))


def _leads(conn: Connection, gen: int, v: dict[str, Any]) -> None:
    stmt = dialect_insert(conn, t.circles).values(generation=gen, name=v["circle_id"], **v)
    conn.execute(stmt.on_conflict_do_update(index_elements=["generation", "circle_id"],
                                            set_={"leads": stmt.excluded.leads}))


def _runs(ops: list[tuple[str, dict[str, Any]]]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The directory's operations in order, consecutive ones of a kind together; a run of registrations
    ends before a member it already holds (so one statement per run applies them as one by one would)."""
    run: list[dict[str, Any]] = []
    run_op = ""
    members: set[str] = set()
    for op, values in ops:
        if run and (op != run_op or (op == "member" and values["member_id"] in members)):
            yield run_op, run
            run, members = [], set()
        run_op = op
        run.append(values)
        if op == "member":
            members.add(values["member_id"])
    if run:
        yield run_op, run


_MEMBER_STATEMENTS: dict[str, tuple[Any, Any, Any]] = {}


def _member_statements(conn: Connection) -> tuple[Any, Any, Any]:
    """Registration's three statements, built once per dialect: building them per member (the upsert's
    `excluded` columns above all) cost milliseconds each, most of a roster's projection."""
    found = _MEMBER_STATEMENTS.get(conn.dialect.name)
    if found is None:
        insert = dialect_insert(conn, t.members)
        upsert = insert.on_conflict_do_update(
            index_elements=["generation", "member_id"],
            set_={"name": insert.excluded.name, "email": insert.excluded.email, "role": insert.excluded.role})
        m = t.memberships.c
        clear = sa.delete(t.memberships).where(m.generation == sa.bindparam("g_"),
                                               m.member_id == sa.bindparam("m_"))
        found = _MEMBER_STATEMENTS[conn.dialect.name] = (upsert, clear, sa.insert(t.memberships))
    return found


def _members(conn: Connection, gen: int, run: list[dict[str, Any]]) -> None:
    """Registrations of distinct members (a roster import, an organisation's start): the member rows
    upserted, their memberships replaced, one executemany each."""
    upsert, clear, insert = _member_statements(conn)
    conn.execute(upsert, [{"generation": gen, "status": ACTIVE,
                           **{k: v for k, v in values.items() if k != "circles"}} for values in run])
    conn.execute(clear, [{"g_": gen, "m_": values["member_id"]} for values in run])
    memberships = [{"generation": gen, "member_id": values["member_id"], "circle_id": c}
                   for values in run for c in values["circles"]]
    if memberships:
        conn.execute(insert, memberships)


def _join(conn: Connection, gen: int, v: dict[str, Any]) -> None:
    stmt = dialect_insert(conn, t.memberships).values(generation=gen, **v)
    conn.execute(stmt.on_conflict_do_nothing())


def _leave(conn: Connection, gen: int, v: dict[str, Any]) -> None:
    m = t.memberships.c
    conn.execute(sa.delete(t.memberships).where(m.generation == gen, m.member_id == v["member_id"],
                                                m.circle_id == v["circle_id"]))


def _member_update(conn: Connection, gen: int, member_id: str, values: dict[str, Any]) -> None:
    m = t.members.c
    done = conn.execute(sa.update(t.members).where(m.generation == gen, m.member_id == member_id).values(**values))
    if done.rowcount == 0:
        # The ledger registers a member before anything else about them (same key, same partition),
        # so this means a log written by something else; the fact has nowhere to go.
        log.warning("directory update for unregistered member %s ignored: %s", member_id, values)


def _capacity(conn: Connection, gen: int, v: dict[str, Any]) -> None:
    _member_update(conn, gen, v["member_id"], {"weekly_hours": v["weekly_hours"]})


def _availability(conn: Connection, gen: int, v: dict[str, Any]) -> None:
    _member_update(conn, gen, v["member_id"], {"status": v["status"], "paused_until": v["paused_until"],
                                               "available_since": v["available_since"]})


def _forget(conn: Connection, gen: int, v: dict[str, Any]) -> None:
    """Blank what the read models hold of the member: name, email, and the words on every exchange
    they are a party to (sealed for both parties, so unreadable now in the log as well). Counters,
    memberships and the exchanges themselves stay: everyone's measures are unchanged."""
    member_id = v["member_id"]
    m, x = t.members.c, t.exchanges.c
    conn.execute(sa.update(t.members).where(m.generation == gen, m.member_id == member_id).values(name="", email=""))
    conn.execute(sa.update(t.exchanges)
                 .where(x.generation == gen, sa.or_(x.giver == member_id, x.receiver == member_id))
                 .values(note="", thanks=None, dispute_reason=None))
    stmt = dialect_insert(conn, t.forgotten).values(generation=gen, **v)
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["generation", "member_id"]))


_DIRECTORY_OPS: dict[str, Callable[[Connection, int, dict[str, Any]], None]] = {
    "circle": _circle, "leads": _leads, "member": lambda conn, gen, v: _members(conn, gen, [v]),
    "join": _join, "leave": _leave,
    "capacity": _capacity, "availability": _availability, "forget": _forget,
}  # fmt: skip
