"""(s) of `make bench`: what sealing personal values costs the balance projection.

Two figures beside the clear ones:
- (s0) in process, no Kafka and no database: decoding the same ExchangeRecorded events and turning them
  into deltas (projector.project), with their notes clear (events written before sealing) and sealed
  (AES-256-GCM, opened through the shared Opener with its key cache), so the difference is the crypto
  and the decoding of the nested value alone;
- (s) the full projection into SQLite through the real consumer, as (b), of the same number of events
  with their notes sealed, keys from an in-memory key source (the ledger's key API answers once per
  member and batch; its round trip is not what is measured).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Collection

from reciprocity.common.sealing import Opener, Sealer
from reciprocity.contracts.envelope import decode, encode, wrap
from reciprocity.contracts.topics import all_topics
from reciprocity.messaging.event_log import EventLog, Outgoing
from reciprocity.messaging.topics_admin import ensure_topics
from rich.console import Console
from rich.table import Table

from .workload import Organisation


class BenchKeys:
    """Member keys derived from the member id: a KeySource without a ledger."""

    def member_keys(self, member_ids: Collection[str]) -> dict[str, bytes | None]:
        return {m: hashlib.sha256(f"bench|{m}".encode()).digest() for m in member_ids}


def _records(org: Organisation, n: int, sealed: bool) -> list[bytes]:
    sealer = Sealer(lambda m: BenchKeys().member_keys([m])[m])
    out = []
    for event in [*org.directory(), *org.exchanges(n)]:
        event_id = uuid.uuid4()
        if sealed:
            event = sealer.seal_event(event, str(event_id))
        out.append(encode(wrap(event, producer="ledger", event_id=event_id)))
    return out


def in_process(org: Organisation, n: int) -> tuple[float, float]:
    """(clear, sealed) events/s of decode + open + project, no Kafka, no database."""
    from reciprocity.balance.projector import project

    rates = []
    for sealed in (False, True):
        records = _records(org, n, sealed)
        opener = Opener(BenchKeys())
        began = time.perf_counter()
        items = [decode(raw) for raw in records]
        opened = opener.open_events([(str(env.event_id), event) for env, event in items])
        project(zip((env for env, _ in items), opened, strict=True), {})
        rates.append(len(records) / (time.perf_counter() - began))
    return rates[0], rates[1]


def full(bootstrap: str, database_url: str, org: Organisation, n: int) -> float:
    """Events/s of the real consumer projecting `n` sealed exchanges into `database_url`."""
    from .projection import project

    prefix = f"benchsealed{uuid.uuid4().hex[:8]}."
    ensure_topics(bootstrap, all_topics(prefix))
    log = EventLog(bootstrap, client_id="bench-sealed-load", topic_prefix=prefix, linger_ms=20)
    try:
        batch: list[Outgoing] = []
        for raw in _records(org, n, sealed=True):
            envelope, event = decode(raw)
            batch.append(Outgoing(event.TOPIC, envelope.key.encode(), raw))
            if len(batch) >= 5000:
                log.append(batch)
                batch = []
        if batch:
            log.append(batch)
    finally:
        log.close()
    rate = project(bootstrap, prefix, database_url, n, "sqlite-sealed", opener=Opener(BenchKeys())).rate
    return rate


def measure(console: Console, results: Table, bootstrap: str, database_url: str, n: int, floor: float,
            clear_rate: float | None) -> None:
    """Add (s0) and (s) to `results`; `clear_rate` is (b) into SQLite, when it was measured."""
    org = Organisation(seed=11)
    small = min(n, 100_000)
    clear, sealed = in_process(org, small)
    results.add_row(f"(s0) decode + open + project in process, {small:,} notes clear", f"{clear:,.0f} events/s", "")
    results.add_row("(s0) ... notes sealed (AES-256-GCM, key cache)", f"{sealed:,.0f} events/s",
                    f"{sealed / clear:.2f} of clear")
    console.print(f"(s0) clear {clear:,.0f}/s, sealed {sealed:,.0f}/s: "
                  f"{(1 / sealed - 1 / clear) * 1e6:,.1f} µs more an event")
    rate = full(bootstrap, database_url, org, n)
    versus = f"{rate / floor:.2f}" + (f"; {rate / clear_rate:.2f} of (b)" if clear_rate else "")
    results.add_row("(s) projection into SQLite, notes sealed", f"{rate:,.0f} events/s", versus)
    console.print(f"(s) SQLite, sealed: {rate:,.0f} events/s")
