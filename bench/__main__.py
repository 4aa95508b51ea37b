"""`make bench` (`python -m bench`): how fast balance keeps up with the log, and how soon a recorded
exchange shows.

One run measures, on a fresh topic set (a LocalKafka, or KAFKA_BOOTSTRAP_SERVERS):
  (a) the read-only floor: a kafka-python consumer with the ProjectionConsumer's client settings that
      only reads the N ExchangeRecorded records;
  (b) the full projection of the same records into SQLite and into PostgreSQL (LocalPostgres) through
      the real ProjectionConsumer + BalanceProjection, as events/s and as a ratio of (a);
  (b2) the same projection into PostgreSQL by two balance processes in one consumer group (how the
      service scales out; SQLite takes one writer at a time, so it is not measured there);
  (b0) the ceiling of (b) set by the database: the rows the projection writes for the same events,
      built untimed, then written in batches of the same size by the projection's own statements and
      committed, with nothing else timed (no Kafka, no decoding, no projecting, no row building).
      However fast the work in front of the database, one writer cannot project faster than this;
  (c) latency from POST /v1/exchanges (a real ledger process) to the exchange being visible in the
      member summary of a real balance process, p50/p99 over --requests requests;
  (d) p50/p99 of the web's pages and balance's member and circle APIs with 10k and with 1M exchanges in
      the read model, and the ratio of the p99s (bench/pages.py);
  (e) the web under load: every demo member at once against the stack as the Procfile starts it
      (bench/load.py), requests/s, p50/p99 per page, errors (a redirect to sign-in included).

The bench imports kafka directly for (a) (the one exception to "only messaging imports kafka"): the
floor is the client itself, without anything of ours around it.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import requests
from reciprocity.contracts.topics import EXCHANGES, all_topics
from reciprocity.messaging.event_log import EventLog
from rich.console import Console
from rich.table import Table

from .pages import REQUESTS_PER_PAGE
from .projection import project, project_by_group
from .stats import percentile
from .workload import Organisation, outgoing

console = Console()
REPO = Path(__file__).resolve().parent.parent


def machine() -> list[tuple[str, str]]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = next(int(x.split()[1]) for x in Path("/proc/meminfo").read_text().splitlines()
                      if x.startswith("MemTotal"))
        ram = f"{mem_kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        ram = "?"
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return [("cores", str(os.cpu_count())), ("CPU", model), ("RAM", ram), ("load average at start", load),
            ("Python", platform.python_version()), ("OS", platform.platform())]


# --- loading -----------------------------------------------------------------------------------


def load(bootstrap: str, prefix: str, org: Organisation, n: int) -> float:
    """Append the directory, then `n` ExchangeRecorded events; returns seconds taken."""
    log = EventLog(bootstrap, client_id="bench-loader", topic_prefix=prefix, timeout_s=60, linger_ms=20)
    began = time.perf_counter()
    try:
        log.append(list(outgoing(org.directory())))
        chunk: list = []
        done = 0
        for record in outgoing(org.exchanges(n)):
            chunk.append(record)
            if len(chunk) == 20_000:
                log.append(chunk)
                done += len(chunk)
                chunk = []
                console.print(f"  loaded {done:,}/{n:,}", end="\r")
        if chunk:
            log.append(chunk)
    finally:
        log.close()
    console.print(" " * 40, end="\r")
    return time.perf_counter() - began


# --- (a) read-only floor -------------------------------------------------------------------------


def read_only(bootstrap: str, prefix: str, n_expected: int) -> tuple[float, float]:
    """(events/s by the wall clock, CPU microseconds of this process per event)."""
    from kafka import KafkaConsumer  # see the module docstring

    consumer = KafkaConsumer(  # the ProjectionConsumer's settings (messaging/consumer.py)
        bootstrap_servers=bootstrap, group_id=f"{prefix}bench-read-only", client_id="bench",
        enable_auto_commit=False, auto_offset_reset="earliest", isolation_level="read_committed",
        max_poll_records=5000, fetch_max_bytes=64 * 1024 * 1024, max_partition_fetch_bytes=8 * 1024 * 1024,
    )  # fmt: skip
    consumer.subscribe([prefix + EXCHANGES.name])
    seen = 0
    first = None
    deadline = time.monotonic() + 600
    try:
        while seen < n_expected and time.monotonic() < deadline:
            polled = consumer.poll(timeout_ms=500, max_records=5000)
            for records in polled.values():
                if first is None:
                    first, cpu_first = time.perf_counter(), time.process_time()
                seen += len(records)
        last, cpu_last = time.perf_counter(), time.process_time()
    finally:
        consumer.close(autocommit=False)
    if seen < n_expected or first is None:
        raise RuntimeError(f"read only {seen} of {n_expected} records")
    return n_expected / (last - first), (cpu_last - cpu_first) / n_expected * 1e6


# --- (b0) write-only bound ----------------------------------------------------------------------


def write_bound(database_url: str, n: int, batch: int) -> float:
    """Events/s when only the database's work is timed: each batch of the same workload (a fresh
    Organisation replays the loaded events) is decoded, projected and turned into the driver's rows
    untimed; then the projection's own statements write those rows and commit, timed
    (BalanceProjection.write_rows, which the consumer's batches go through)."""
    from reciprocity.balance.db import make_engine, migrate
    from reciprocity.balance.projection import BalanceProjection
    from reciprocity.balance.projector import project as to_deltas
    from reciprocity.contracts.envelope import decode, encode, wrap

    engine = make_engine(database_url)
    migrate(engine)
    projection = BalanceProjection(engine)
    org = Organisation()
    written = 0.0
    try:
        with engine.begin() as conn:
            gen = projection.generation(conn)
            projection.write(conn, gen,
                             to_deltas((decode(encode(wrap(e, producer="ledger"))) for e in org.directory()), {}))
        events = org.exchanges(n)
        done = 0
        while done < n:
            chunk = [decode(encode(wrap(e, producer="ledger"))) for _, e in zip(range(batch), events, strict=False)]
            rows = projection.rows(gen, to_deltas(chunk, {}))
            began = time.perf_counter()
            with engine.begin() as conn:
                projection.write_rows(conn, rows)
            written += time.perf_counter() - began
            done += len(chunk)
    finally:
        engine.dispose()
    return n / written


# --- (c) latency ---------------------------------------------------------------------------------


class Service:
    """`python -m MODULE ARGS` on a free port: PORT for an API, HEALTH_PORT for a worker role's probe."""

    def __init__(self, module: str, env: dict[str, str], log_dir: Path, name: str, args: tuple[str, ...] = (),
                 port_variable: str = "PORT") -> None:
        from devstack.ports import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"{name}.log"
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", module, *args], stdout=out, stderr=subprocess.STDOUT,
                                         env={**os.environ, **env, port_variable: str(self.port), "HOST": "127.0.0.1"})
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{module} exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                if requests.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{module} not healthy in 90 s:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def latency(bootstrap: str, workdir: Path, n_requests: int) -> list[float]:
    from reciprocity.messaging.topics_admin import ensure_topics

    prefix = f"benchlat{uuid.uuid4().hex[:8]}."
    ensure_topics(bootstrap, all_topics(prefix))
    token = "bench-token"
    balance_token = "bench-balance-token"
    common = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "TOPIC_PREFIX": prefix, "LEDGER_TOKEN": token,
              "BALANCE_TOKEN": balance_token, "RECIPROCITY_ENV": "development",
              "LOG_LEVEL": "WARNING"}
    with ExitStack() as stack:
        ledger = Service("reciprocity.ledger.app", common, workdir, "ledger")
        stack.callback(ledger.stop)
        balance_env = {**common, "DATABASE_URL": f"sqlite:///{workdir}/latency.db", "LEDGER_URL": ledger.url}
        projector = Service("reciprocity.balance.worker", balance_env, workdir, "balance-projector",
                            args=("projector",), port_variable="HEALTH_PORT")
        stack.callback(projector.stop)
        balance = Service("reciprocity.balance.app", balance_env, workdir, "balance")
        stack.callback(balance.stop)
        http = requests.Session()
        auth = {"Authorization": f"Bearer {token}"}

        def post(path: str, body: dict) -> dict:
            answer = http.post(ledger.url + path, json=body, headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
                               timeout=10)
            if answer.status_code != 201:
                raise RuntimeError(f"POST {path}: {answer.status_code} {answer.text[:300]}")
            return answer.json()

        post("/v1/circles", {"id": "bench", "name": "Bench"})
        people = [f"lat-{i}" for i in range(10)]
        for p in people:
            post("/v1/members", {"id": p, "name": p.title(), "email": f"{p}@example.org", "circles": ["bench"]})
        today = datetime.now(UTC).date().isoformat()
        expected = dict.fromkeys(people, 0)
        samples: list[float] = []
        for i in range(n_requests):
            giver, receiver = people[i % 10], people[(i + 3) % 10]
            minutes = 5 + i % 50
            expected[receiver] += minutes
            began = time.perf_counter()
            post("/v1/exchanges", {"giver": giver, "receiver": receiver, "kind": "help", "minutes": minutes,
                                   "occurred_on": today, "recorded_by": giver})
            deadline = began + 30
            while True:
                summary = http.get(f"{balance.url}/v1/members/{receiver}/summary", timeout=10,
                                   headers={"Authorization": f"Bearer {balance_token}"})
                if summary.status_code == 200 and summary.json()["received"]["pending_minutes"] >= expected[receiver]:
                    break
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"exchange {i} not visible in 30 s")
                time.sleep(0.002)
            samples.append(time.perf_counter() - began)
        return samples


# --- main ----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="ExchangeRecorded events to load")
    parser.add_argument("--requests", type=int, default=1000, help="requests for the latency measurement")
    parser.add_argument("--skip", action="append", default=[],
                        choices=["sqlite", "postgres", "latency", "pages", "load", "sealed"])
    parser.add_argument("--pages-small", type=int, default=10_000, help="(d): exchanges in the small read model")
    parser.add_argument("--pages-large", type=int, default=1_000_000, help="(d): exchanges in the large read model")
    parser.add_argument("--pages-requests", type=int, default=REQUESTS_PER_PAGE,
                        help="(d): requests per page and size")
    parser.add_argument("--load-seconds", type=float, default=90, help="(e): seconds of load")
    args = parser.parse_args(argv)
    from reciprocity.balance.settings import BalanceSettings

    info = Table(title="machine", show_header=False)
    for k, v in machine():
        info.add_row(k, v)
    console.print(info)

    results = Table(title=f"balance benchmark, {args.events:,} ExchangeRecorded events")
    results.add_column("measure")
    results.add_column("result", justify="right")
    results.add_column("vs read-only floor", justify="right")
    workdir = Path(tempfile.mkdtemp(prefix="reciprocity-bench-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, True)
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            from devstack.local_kafka import LocalKafka

            kafka = stack.enter_context(LocalKafka(workdir / "kafka", heap_max="1g"))
            bootstrap = kafka.bootstrap_servers
            console.print(f"Kafka {kafka.version} (local) at {bootstrap}")
        from reciprocity.messaging.topics_admin import ensure_topics

        prefix = f"bench{uuid.uuid4().hex[:8]}."
        ensure_topics(bootstrap, all_topics(prefix))
        org = Organisation()
        console.print(f"loading {args.events:,} events ({len(org.members):,} members, {len(org.circles)} circles) "
                      f"into {EXCHANGES.partitions} partitions of {prefix}{EXCHANGES.name} ...")
        seconds = load(bootstrap, prefix, org, args.events)
        n = args.events
        results.add_row("load (EventLog, idempotent producer)", f"{n / seconds:,.0f} events/s", "")

        floor, floor_cpu = read_only(bootstrap, prefix, n)
        results.add_row("(a) read only (kafka-python)", f"{floor:,.0f} events/s", "1.00")
        # CPU per event, and the floor's CPU over it: what the neighbours on a shared machine change least.
        results.add_row("(a) ... CPU per event", f"{floor_cpu:,.1f} us", "")
        console.print(f"(a) read-only floor: {floor:,.0f} events/s, {floor_cpu:,.1f} us CPU/event")
        batch = BalanceSettings().balance_max_poll_records
        sqlite_rate = None
        if "sqlite" not in args.skip:
            rate, batches, cpu = project(bootstrap, prefix, f"sqlite:///{workdir}/bench.db", n, "sqlite")
            sqlite_rate = rate
            results.add_row(f"(b) projection into SQLite ({batches} batches)", f"{rate:,.0f} events/s",
                            f"{rate / floor:.2f}")
            results.add_row("(b) ... CPU per event (SQLite in process), floor's CPU / this", f"{cpu:,.1f} us",
                            f"{floor_cpu / cpu:.2f}")
            console.print(f"(b) SQLite: {rate:,.0f} events/s, {cpu:,.1f} us CPU/event")
            bound = write_bound(f"sqlite:///{workdir}/bound.db", n, batch)
            results.add_row(f"(b0) SQLite writes alone, batches of {batch:,}", f"{bound:,.0f} events/s",
                            f"{bound / floor:.2f}")
            console.print(f"(b0) SQLite writes alone: {bound:,.0f} events/s")
        if "sealed" not in args.skip:  # (s0), (s): the cost of sealing (bench/sealing.py)
            from .sealing import measure

            measure(console, results, bootstrap, f"sqlite:///{workdir}/sealed.db", n, floor, sqlite_rate)
        if "postgres" not in args.skip:
            from devstack.local_postgres import LocalPostgres

            pg = stack.enter_context(LocalPostgres())
            rate, batches, cpu = project(bootstrap, prefix, pg.create_database("bench"), n, "postgres")
            results.add_row(f"(b) projection into PostgreSQL {pg.version} ({batches} batches)",
                            f"{rate:,.0f} events/s", f"{rate / floor:.2f}")
            results.add_row("(b) ... CPU per event of balance (not the server's), floor's CPU / this",
                            f"{cpu:,.1f} us", f"{floor_cpu / cpu:.2f}")
            console.print(f"(b) PostgreSQL: {rate:,.0f} events/s, {cpu:,.1f} us CPU/event")
            console.print(f"(b) PostgreSQL: {rate:,.0f} events/s")
            bound = write_bound(pg.create_database("bound"), n, batch)
            results.add_row(f"(b0) PostgreSQL writes alone, batches of {batch:,}", f"{bound:,.0f} events/s",
                            f"{bound / floor:.2f}")
            console.print(f"(b0) PostgreSQL writes alone: {bound:,.0f} events/s")
            rate = project_by_group(bootstrap, prefix, pg.create_database("bench_group"), n, "postgres-group")
            results.add_row("(b2) projection into PostgreSQL by 2 balance processes in one group",
                            f"{rate:,.0f} events/s", f"{rate / floor:.2f}")
            console.print(f"(b2) PostgreSQL, 2 processes: {rate:,.0f} events/s")
        if "latency" not in args.skip:
            samples = latency(bootstrap, workdir, args.requests)
            results.add_row(f"(c) POST /v1/exchanges -> visible in summary, p50 ({len(samples)} requests)",
                            f"{statistics.median(samples) * 1000:,.1f} ms", "")
            results.add_row("(c) ... p99", f"{percentile(samples, 99) * 1000:,.1f} ms", "")
            results.add_row("(c) ... max", f"{max(samples) * 1000:,.1f} ms", "")
        if "load" not in args.skip:  # before (d): the same broker, and (d) leaves the disk busy
            from .load import measure as measure_load

            os.environ["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
            console.print(f"(e) every demo member at once for {args.load_seconds:.0f} s ...")
            load_rows, headline = measure_load(args.load_seconds)
            load_table = Table(title="(e) the web under load, every demo member at once (client on this machine)")
            load_table.add_column("measure")
            load_table.add_column("result", justify="right")
            for name, value in load_rows:
                load_table.add_row(name, value)
            results.add_row("(e) requests/s under load", f"{headline['rps']:,.1f}", "")
            results.add_row("(e) ... errors (sign-ins included)", f"{headline['errors']:,.0f}", "")
            results.add_row("(e) ... dashboard p99", f"{headline['dashboard_p99_ms']:,.0f} ms", "")
        if "pages" not in args.skip:
            from .pages import run as run_pages

            pages = Table(title=f"(d) pages and APIs: {args.pages_small:,} vs {args.pages_large:,} exchanges "
                                f"in the read model, {args.pages_requests} requests each")
            pages.add_column("page or API")
            pages.add_column(f"{args.pages_small:,} p50 / p99", justify="right")
            pages.add_column(f"{args.pages_large:,} p50 / p99", justify="right")
            pages.add_column("p99 ratio", justify="right")
            for row in run_pages(workdir, args.pages_small, args.pages_large, args.pages_requests,
                                 progress=console.print):
                pages.add_row(*row)
    console.print(results)
    if "load" not in args.skip:
        console.print(load_table)
    if "pages" not in args.skip:
        console.print(pages)
    console.print("targets: (b) SQLite >= 0.25 x the read-only floor, PostgreSQL >= 0.2 x; (c) p99 <= 100 ms; "
                  "(d) p99 at the large size <= 1.5 x p99 at 10k; (e) 0 errors, >= 136 requests/s, "
                  "dashboard p99 <= 700 ms.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
