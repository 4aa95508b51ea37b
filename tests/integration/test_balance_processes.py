"""Balance as real processes: killed with SIGKILL mid-stream and restarted, and two processes sharing
the partitions, must end with exactly the read model the events add up to."""

from __future__ import annotations

import random
import signal
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from reciprocity.balance import queries
from reciprocity.balance import tables as t
from reciprocity.balance.db import make_engine
from reciprocity.contracts.vocabulary import EXCHANGE_KINDS
from reciprocity.messaging.event_log import EventLog

from tests.support.balance_stack import caught_up, make_topics, stored_offsets
from tests.support.events import Exchange, append, circle, member
from tests.support.services import ServiceProcess, wait_for, worker

pytestmark = pytest.mark.kafka

MODULE = "reciprocity.balance.worker"


def projector(env: dict[str, str], log_dir) -> ServiceProcess:  # type: ignore[no-untyped-def]
    return worker(MODULE, "projector", env=env, log_dir=log_dir)


def workload(n_events: int, seed: int = 7) -> tuple[list, list, dict[str, int]]:
    """Directory events, then `n_events` exchange events (recorded, and later acknowledged, disputed or
    withdrawn for some), with the totals they must add up to."""
    rnd = random.Random(seed)
    today = datetime.now(UTC).date()
    people = [f"m{i:03d}" for i in range(40)]
    circles_of = {p: [f"c{i % 6}"] + ([f"c{(i + 1) % 6}"] if i % 4 == 0 else []) for i, p in enumerate(people)}
    directory = [circle(f"c{i}") for i in range(6)] + [member(p, circles_of[p]) for p in people]
    exchanges: list = []
    open_ones: list[Exchange] = []
    totals = {"settled": 0, "pending": 0, "settled_n": 0, "pending_n": 0, "exchanges": 0}
    while len(exchanges) < n_events:
        if open_ones and rnd.random() < 0.3:
            x = open_ones.pop(rnd.randrange(len(open_ones)))
            fate = rnd.choice(["ack", "ack", "dispute", "withdraw"])
            minutes = x.facts["minutes"]
            totals["pending"] -= minutes
            totals["pending_n"] -= 1
            if fate == "ack":
                exchanges.append(x.acknowledged())
                totals["settled"] += minutes
                totals["settled_n"] += 1
            else:
                exchanges.append(x.disputed() if fate == "dispute" else x.withdrawn())
            continue
        giver, receiver = rnd.sample(people, 2)
        x = Exchange(giver, receiver, rnd.randint(5, 180), today - timedelta(days=rnd.randint(0, 60)),
                     rnd.choice(EXCHANGE_KINDS), giver_circles=circles_of[giver], receiver_circles=circles_of[receiver])
        exchanges.append(x.recorded())
        open_ones.append(x)
        totals["pending"] += x.facts["minutes"]
        totals["pending_n"] += 1
        totals["exchanges"] += 1
    return directory, exchanges, totals


def read_totals(url: str) -> dict[str, int]:
    engine = make_engine(url, immediate=False)
    x = t.exchanges.c
    with engine.connect() as conn:
        # Every member's numbers as the read API sums them, added up over everyone.
        members = [queries.counter_totals(kinds) for kinds in queries.member_counters(conn, 1, None, None).values()]
        totals = {name: sum(m[name] for m in members) for name in queries.MEMBER_COUNTERS}
        count = conn.execute(sa.select(sa.func.count()).select_from(t.exchanges).where(x.generation == 1)).scalar()
    engine.dispose()
    settled, settled_r, settled_n = totals["given_minutes"], totals["received_minutes"], totals["given_count"]
    pending, pending_r = totals["pending_given_minutes"], totals["pending_received_minutes"]
    pending_n = totals["pending_given_count"]
    assert settled == settled_r and pending == pending_r
    return {"settled": settled, "pending": pending, "settled_n": settled_n, "pending_n": pending_n,
            "exchanges": int(count or 0)}


def dump(url: str) -> dict[str, list[tuple]]:
    """Every read-model row of generation 1, comparable across databases."""
    engine = make_engine(url, immediate=False)
    found = {}
    with engine.connect() as conn:
        for table in (t.circle_day, t.exchanges, t.members, t.memberships, t.circles):
            cols = [c for c in table.columns if c.name not in ("generation", "updated_at", "recorded_at")]
            rows = conn.execute(sa.select(*cols).where(table.c.generation == 1))
            counters = [i for i, c in enumerate(cols) if c.type.__class__ is sa.BigInteger]
            # Rows whose counters all went back to zero depend on batch boundaries; they count nothing.
            found[table.name] = sorted(tuple(r) for r in rows if not counters or any(r[i] for i in counters))
    engine.dispose()
    return found


def env_for(bootstrap: str, prefix: str, url: str) -> dict[str, str]:
    return {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "TOPIC_PREFIX": prefix, "DATABASE_URL": url,
            "BALANCE_SWEEP_INTERVAL_S": "3600", "LOG_LEVEL": "INFO"}


def test_sigkill_mid_stream_then_restart_adds_up_exactly(kafka_bootstrap: str, unique_id: str, db_url: str,
                                                          tmp_path) -> None:  # type: ignore[no-untyped-def]
    prefix = f"t{unique_id}."
    make_topics(kafka_bootstrap, prefix)
    directory, exchanges, expected = workload(10_000)
    log = EventLog(kafka_bootstrap, client_id="test-ledger", topic_prefix=prefix)
    engine = make_engine(db_url, immediate=False)
    try:
        append(log, directory)
        with projector(env_for(kafka_bootstrap, prefix, db_url), tmp_path) as balance:
            for i in range(0, len(exchanges), 500):
                append(log, exchanges[i:i + 500])
            # Kill it while it is somewhere in the middle of the stream.
            wait_for(lambda: sum(v for (topic, _), v in stored_offsets(engine).items()
                                 if topic == "ledger.exchanges") >= 1000, 60, interval_s=0.02, what="some progress")
            balance.kill(signal.SIGKILL)
        applied = sum(v for (topic, _), v in stored_offsets(engine).items() if topic == "ledger.exchanges")
        assert applied < len(exchanges), "the process finished before it was killed; kill it earlier"
        # A new group name: the group only shares out partitions (offsets are in the database), and the
        # killed member would otherwise hold its partitions until its session times out (45 s).
        restart = {**env_for(kafka_bootstrap, prefix, db_url), "BALANCE_CONSUMER_GROUP": "balance-restarted"}
        with projector(restart, tmp_path):
            wait_for(lambda: caught_up(engine, kafka_bootstrap, prefix), 120, what="caught up after restart")
        assert read_totals(db_url) == expected
    finally:
        engine.dispose()
        log.close()


def test_two_processes_build_the_same_read_model_as_one(kafka_bootstrap: str, unique_id: str, db_url: str,
                                                        tmp_path) -> None:  # type: ignore[no-untyped-def]
    prefix = f"t{unique_id}."
    make_topics(kafka_bootstrap, prefix)  # ledger.exchanges has 8 partitions, ledger.directory 4
    directory, exchanges, expected = workload(4000, seed=11)
    log = EventLog(kafka_bootstrap, client_id="test-ledger", topic_prefix=prefix)
    single = f"sqlite:///{tmp_path}/single.db"
    single_engine, shared_engine = make_engine(single, immediate=False), make_engine(db_url, immediate=False)
    try:
        append(log, directory)
        env_two = env_for(kafka_bootstrap, prefix, db_url)
        with projector(env_two, tmp_path), projector(env_two, tmp_path):
            for i in range(0, len(exchanges), 250):
                append(log, exchanges[i:i + 250])
            wait_for(lambda: caught_up(shared_engine, kafka_bootstrap, prefix), 120, what="two processes caught up")
        # One process alone, with its own consumer group and database, over the same log.
        with projector(env_for(kafka_bootstrap, prefix, single), tmp_path / "single"):
            wait_for(lambda: caught_up(single_engine, kafka_bootstrap, prefix), 120, what="one process caught up")
        assert read_totals(db_url) == expected
        two, one = dump(db_url), dump(single)
        for table in one:
            assert two[table] == one[table], table
    finally:
        single_engine.dispose()
        shared_engine.dispose()
        log.close()
