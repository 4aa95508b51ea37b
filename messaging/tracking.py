"""Offsets stored with the data: the one place a projection's consumed positions are loaded, advanced
and read (ARCHITECTURE "Offsets live with the data"; the `Tracking` records of pyeventsourcing).

Each projection keeps a table with one row per (topic, partition), holding the next offset to read, and
optionally a scope (balance keeps one set of rows per generation, so a replay builds its own) and the
time of the last event applied. `OffsetStore` wraps such a table; the projection calls `advance` inside
the transaction that writes its rows, so the rows and the position commit together or not at all.

The compare-and-set rule, one for every projection: a batch moves a partition from `first` to `next`
only if the stored offset is exactly `first` (or, for a partition with nothing stored, no other
consumer stores one at the same time). Anything else raises StaleBatch and changes nothing; the
consumer seeks back to the stored offset and reads from there. It is one conditional UPDATE, atomic on
SQLite (one writer at a time) and on PostgreSQL (a concurrent UPDATE of the row waits for the first to
commit and re-checks the condition against the committed row), so no SELECT ... FOR UPDATE is needed.

Why "exactly", not "at or before": the consumer always states where the stored offset stands (a
transaction's commit marker between two batches is inside the span, never a gap), so a stored offset
behind `first` is never the consumer's own doing: the store was rewound (notify's rewind, a replay's
fresh generation), and accepting the batch would skip what lies between. Likewise:
- a repeat (a batch polled again after a crash between the database commit and anything after it, or
  a retried batch) starts below the stored offset: stale, nothing applied twice;
- two processes of one group after a rebalance: the one still holding an old batch finds the offset
  moved by the new owner: stale, it seeks, and the partition is no longer its own;
- a poison event parked in the middle of a batch: the batch is applied in contiguous pieces, each
  starting where the previous one stopped, the parked event's piece moving the offset past it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

# (logical topic, partition): how projections name a partition in their offset tables.
PartitionKey = tuple[str, int]


@dataclass(frozen=True)
class OffsetRange:
    first: int  # the stored offset this batch continues from (commit markers may precede its first record)
    next: int  # offset to read after this batch


class StaleBatch(RuntimeError):
    """The stored offset is not where this batch starts: another consumer applied it first, or the store
    was rewound. Nothing of the batch was applied; seek to the stored offsets."""


@dataclass(frozen=True)
class Position:
    next_offset: int
    last_event_at: datetime | None = None  # None where the table keeps no time


class OffsetStore:
    """The positions of one projection, in `table`: columns `topic`, `partition`, `next_offset`, optionally
    `last_event_at`, and any scope columns (balance's `generation`), given as keyword arguments to each
    call (`store.load(conn, keys, generation=3)`)."""

    def __init__(self, table: sa.Table) -> None:
        for column in ("topic", "partition", "next_offset"):
            if column not in table.c:
                raise ValueError(f"{table.name} has no {column} column: not an offset table")
        self.table = table
        self.timed = "last_event_at" in table.c

    def _scope(self, scope: Mapping[str, Any]) -> list[sa.ColumnElement[bool]]:
        return [self.table.c[name] == value for name, value in scope.items()]

    def read(self, conn: Connection, **scope: Any) -> dict[PartitionKey, Position]:
        """Every stored position in the scope (status pages, lag, catch-up checks)."""
        c = self.table.c
        columns = [c.topic, c.partition, c.next_offset] + ([c.last_event_at] if self.timed else [])
        return {(r.topic, int(r.partition)): Position(int(r.next_offset), r.last_event_at if self.timed else None)
                for r in conn.execute(sa.select(*columns).where(*self._scope(scope)))}

    def next_offsets(self, conn: Connection, **scope: Any) -> dict[PartitionKey, int]:
        """Every stored next offset in the scope."""
        return {key: p.next_offset for key, p in self.read(conn, **scope).items()}

    def load(self, conn: Connection, partitions: Iterable[PartitionKey], **scope: Any) -> dict[PartitionKey, int]:
        """Where to seek each of `partitions` that has a stored offset (Projection.load_offsets)."""
        wanted = set(partitions)
        return {key: n for key, n in self.next_offsets(conn, **scope).items() if key in wanted}

    def advance(self, conn: Connection, spans: Mapping[PartitionKey, OffsetRange], *,
                latest: Mapping[PartitionKey, datetime] | None = None, **scope: Any) -> None:
        """Compare-and-set: move each partition from `span.first` to `span.next`, in the transaction `conn`
        is in, or raise StaleBatch. `latest` is the last event time per partition (kept where the table
        has `last_event_at`). Partitions are taken in key order, so concurrent writers lock rows in the same
        order."""
        c = self.table.c
        for key, span in sorted(spans.items()):
            topic, partition = key
            values: dict[str, Any] = {"next_offset": span.next}
            if self.timed and latest and key in latest:
                values["last_event_at"] = latest[key]
            where = [*self._scope(scope), c.topic == topic, c.partition == partition]
            moved = conn.execute(sa.update(self.table).where(*where, c.next_offset == span.first)
                                 .values(**values)).rowcount
            if moved == 1:
                continue
            stored = conn.execute(sa.select(c.next_offset).where(*where)).scalar()
            if stored is not None:
                raise StaleBatch(f"{topic}[{partition}]{_label(scope)} is stored at {stored}, "
                                 f"the batch starts at {span.first}")
            try:
                with conn.begin_nested():  # a savepoint: the outer transaction survives the conflict
                    conn.execute(sa.insert(self.table).values(**scope, topic=topic, partition=partition, **values))
            except IntegrityError as err:
                raise StaleBatch(f"{topic}[{partition}]{_label(scope)} was stored by another consumer") from err

    def forget(self, conn: Connection, topics: Sequence[str] | None = None, **scope: Any) -> int:
        """Drop the stored positions (all in the scope, or those of `topics`): the next start reads those
        partitions from the beginning. Returns how many were dropped."""
        query = sa.delete(self.table).where(*self._scope(scope))
        if topics is not None:
            query = query.where(self.table.c.topic.in_(list(topics)))
        return int(conn.execute(query).rowcount)


def _label(scope: Mapping[str, Any]) -> str:
    return "".join(f" of {name} {value}" for name, value in scope.items())
