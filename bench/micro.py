"""`python -m bench.micro`: the projection's per-event costs without Kafka, phase by phase.

Encodes N ExchangeRecorded envelopes as the ledger would, then times, per event: decoding (what the
consumer does per record), the pure projector, and BalanceProjection.apply into SQLite and (with
--postgres) PostgreSQL in batches of --batch. For comparing variants of the hot path within one run;
`python -m bench` remains the end-to-end measure.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from reciprocity.contracts.envelope import decode, encode, wrap
from reciprocity.contracts.topics import DIRECTORY, EXCHANGES
from reciprocity.messaging.consumer import Delivered, OffsetRange

from .workload import Organisation


def _records(n: int) -> tuple[list[bytes], list[bytes]]:
    org = Organisation()
    directory = [encode(wrap(e, producer="ledger")) for e in org.directory()]
    exchanges = [encode(wrap(e, producer="ledger")) for e in org.exchanges(n)]
    return directory, exchanges


def _deliver(topic: str, raws: Sequence[bytes], start: int = 0) -> list[Delivered]:
    out = []
    for i, raw in enumerate(raws):
        envelope, event = decode(raw)
        out.append(Delivered(topic, 0, start + i, envelope, event))
    return out


def _time_decode(raws: Sequence[bytes], repeat: int = 3) -> float:
    runs = []
    for _ in range(repeat):
        began = time.perf_counter()
        _deliver(EXCHANGES.name, raws)
        runs.append(time.perf_counter() - began)
    return statistics.median(runs) / len(raws)


def _time_project(delivered: Sequence[Delivered], batch: int, repeat: int = 3) -> float:
    from reciprocity.balance.projector import project

    runs = []
    for _ in range(repeat):
        began = time.perf_counter()
        for i in range(0, len(delivered), batch):
            project(((d.envelope, d.event) for d in delivered[i:i + batch]), {})
        runs.append(time.perf_counter() - began)
    return statistics.median(runs) / len(delivered)


def _time_apply(url: str, directory: list[Delivered], delivered: list[Delivered], batch: int) -> tuple[float, float]:
    """Seconds per event through BalanceProjection.apply, and the median batch time."""
    from reciprocity.balance.db import make_engine, migrate
    from reciprocity.balance.projection import BalanceProjection

    engine = make_engine(url)
    migrate(engine)
    projection = BalanceProjection(engine)
    keys = [(DIRECTORY.name, 0), (EXCHANGES.name, 0)]
    projection.load_offsets(keys)
    projection.apply(directory, {keys[0]: OffsetRange(0, len(directory))})
    times = []
    began = time.perf_counter()
    for i in range(0, len(delivered), batch):
        chunk = delivered[i:i + batch]
        t0 = time.perf_counter()
        projection.apply(chunk, {keys[1]: OffsetRange(i, i + len(chunk))})
        times.append(time.perf_counter() - t0)
    total = time.perf_counter() - began
    engine.dispose()
    return total / len(delivered), statistics.median(times)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.micro", description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=20000)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args(argv)

    raw_directory, raw_exchanges = _records(args.events)
    directory = _deliver(DIRECTORY.name, raw_directory)
    delivered = _deliver(EXCHANGES.name, raw_exchanges)
    gc.collect()
    gc.disable()  # as ProjectionConsumer runs a batch (messaging/consumer.py _CollectionPause)
    print(f"decode + Delivered: {_time_decode(raw_exchanges[:50_000]) * 1e6:6.2f} us/event")
    print(f"project (pure):     {_time_project(delivered, args.batch) * 1e6:6.2f} us/event")
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            per, batch_s = _time_apply(f"sqlite:///{Path(tmp) / 'micro.db'}", directory, delivered, args.batch)
            print(f"apply SQLite:       {per * 1e6:6.2f} us/event (median batch {batch_s * 1000:.0f} ms)")
    if args.postgres:
        from devstack.local_postgres import LocalPostgres

        with LocalPostgres() as pg:
            per, batch_s = _time_apply(pg.create_database("micro"), directory, delivered, args.batch)
            print(f"apply PostgreSQL:   {per * 1e6:6.2f} us/event (median batch {batch_s * 1000:.0f} ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
