"""`make chaos` (`python -m bench.chaos`): the whole stack under load while processes are SIGKILLed.

1. Starts its own broker (LocalKafka) and every service of the Procfile on free loopback ports, with
   its own SQLite read models and mail sink under var/chaos/<time>/ (logs there too).
2. Registers an organisation through the ledger's API, then sends a steady load of commands (see
   load.py) while it SIGKILLs, at random, balance, notify, the ledger and the broker, restarting each,
   CHAOS_KILLS times (default 100) or until CHAOS_SECONDS (default 660) have passed.
3. Lets the system settle (waits, with a deadline, for the ledger to answer, balance and notify to have
   consumed everything, the outboxes to drain and the expected alerts to arrive), then checks what the
   ledger acknowledged against the read model, the signals and the mailbox (check.py).

Its last line is `chaos: K kills, A acknowledged, L lost, D double-applied, E alerts expected, S
delivered, U duplicate emails`; it exits 1 when anything was lost or applied twice, an expected alert
is missing, an email came twice outside notify's send window, or the system did not settle by the
deadline.

Environment: CHAOS_KILLS (100), CHAOS_SECONDS (660, the longest the kills go on), CHAOS_RATE (commands
per second, 4), CHAOS_SEED (random), CHAOS_SETTLE_S (180, the deadline for settling).
"""

from __future__ import annotations

import bisect
import email
import email.policy
import json
import logging
import os
import random
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa
from reciprocity.balance import queries as balance_queries
from reciprocity.balance import tables as bt
from reciprocity.balance.db import make_engine
from reciprocity.balance.generations import active_generation
from reciprocity.common import db as common_db
from reciprocity.contracts.topics import DIRECTORY, EXCHANGES, SIGNALS
from reciprocity.messaging.inspect import end_offsets
from reciprocity.notify import store as nt

from .check import COUNTERS, ExchangeRow, Mail, check, check_alerts, last_line
from .load import NOTE_PREFIX, Client, Load, count_outcomes
from .stack import REPO, Process, Stack

TOKENS = {"LEDGER_TOKEN": "chaos-ledger-token", "BALANCE_TOKEN": "chaos-balance-token",
          "NOTIFY_TOKEN": "chaos-notify-token"}
# A local run like `make run`'s: whatever a service allows only on a development machine, it allows here.
DEVELOPMENT = {"RECIPROCITY_ENV": "development"}
# How often each is picked. The broker less often: on two busy cores it takes 15-30 s to come back
# (JVM start, log recovery after SIGKILL), during which nothing can be acknowledged at all.
TARGETS = {"ledger": 3, "balance": 3, "notify": 3, "kafka": 1}
# A process is killed again only after it has lived this long and answers: a kill loop faster than
# start-up would only ever kill processes that are still importing.
MIN_UPTIME_S = 5.0
_KIND_OF_TYPE = {"MemberOverextended": "overextended", "MemberDisconnected": "disconnected"}


def say(text: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {text}", flush=True)


def wait_until(condition: Callable[[], Any], deadline: float, what: str, interval_s: float = 1.0) -> bool:
    """Poll until `condition()` is truthy or the (monotonic) deadline passes; say which."""
    began = time.monotonic()
    while True:
        try:
            if condition():
                say(f"{what}: yes after {time.monotonic() - began:.0f}s")
                return True
        except Exception as err:  # a database or broker still coming back: ask again
            last = repr(err)[:200]
        else:
            last = "not yet"
        if time.monotonic() > deadline:
            say(f"{what}: NOT reached by the deadline ({last})")
            return False
        time.sleep(interval_s)


@dataclass
class Chaos:
    stack: Stack
    rng: random.Random
    kills: list[tuple[float, str, str]] = field(default_factory=list)  # (epoch, role, process name)
    kafka_restarting: threading.Event = field(default_factory=threading.Event)
    kafka_restart_s: list[float] = field(default_factory=list)
    kafka_up_since: float = field(default_factory=time.monotonic)
    log_path: Path | None = None
    exits: list[tuple[float, str, int | None]] = field(default_factory=list)  # processes that exited by themselves

    def _note(self, role: str, name: str) -> None:
        self.kills.append((time.time(), role, name))
        if self.log_path is not None:
            with open(self.log_path, "a") as out:
                out.write(f"{datetime.now(UTC):%H:%M:%S.%f} kill {len(self.kills)}: SIGKILL {name}\n")

    def candidates(self) -> dict[str, list[Process]]:
        """What may be killed now, by role (the broker as an empty list)."""
        found: dict[str, list[Process]] = {}
        for role in TARGETS:
            if role == "kafka":
                if (not self.kafka_restarting.is_set() and self.stack.kafka.is_running()
                        and time.monotonic() - self.kafka_up_since >= 2 * MIN_UPTIME_S):
                    found[role] = []
            elif killable := [p for p in self.stack.of_role(role) if self._killable(p)]:
                found[role] = killable
        return found

    @staticmethod
    def _killable(process: Process) -> bool:
        return time.monotonic() - process.started_at >= MIN_UPTIME_S and process.up()

    def kill_one(self) -> bool:
        candidates = self.candidates()
        if not candidates:
            return False
        roles = sorted(candidates)
        role = self.rng.choices(roles, weights=[TARGETS[r] for r in roles])[0]
        if role == "kafka":
            self.stack.kill_kafka()
            self._note(role, "kafka")
            self.kafka_restarting.set()  # the main thread restarts it (see run)
            return True
        process = self.rng.choice(candidates[role])
        process.kill()
        self._note(role, process.name)
        time.sleep(self.rng.uniform(0.0, 1.5))  # a supervisor's restart delay
        process.start()
        return True

    def _restart_kafka(self) -> None:
        began = time.monotonic()
        try:
            for attempt in range(5):
                try:
                    self.stack.kafka.start()
                    break
                except Exception as err:
                    say(f"kafka restart attempt {attempt + 1} failed: {str(err)[:300]}")
                    time.sleep(2)
            self.kafka_restart_s.append(time.monotonic() - began)
            self.kafka_up_since = time.monotonic()
        finally:
            self.kafka_restarting.clear()

    def run(self, kills: int, seconds: float) -> None:
        """Kill from a thread of its own; restart the broker from this (the main) thread. LocalKafka asks
        Linux to stop the JVM when its parent dies (PR_SET_PDEATHSIG), and Linux means the parent
        *thread*: a broker started from a short-lived thread is sent SIGTERM the moment that thread ends."""
        killer = threading.Thread(target=self._kill_loop, args=(kills, seconds), name="chaos-killer", daemon=True)
        killer.start()
        while killer.is_alive() or self.kafka_restarting.is_set():
            if self.kafka_restarting.is_set():
                self._restart_kafka()
            else:
                killer.join(timeout=0.2)

    def supervise(self) -> None:
        """Restart what exited by itself, as a supervisor would (a worker whose thread died exits 1 so
        that it is restarted); each such exit is reported."""
        for process in self.stack.processes:
            if process.popen is not None and not process.alive():
                code = process.popen.returncode
                self.exits.append((time.time(), process.name, code))
                say(f"{process.name} exited by itself (code {code}); restarting it")
                process.start()

    def _kill_loop(self, kills: int, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while len(self.kills) < kills and time.monotonic() < deadline:
            time.sleep(self.rng.uniform(0.5, 3.5))
            self.supervise()
            try:
                if not self.kill_one():
                    continue
            except Exception as err:  # a kill that went wrong must not end the run quietly
                say(f"kill failed: {err!r}")
                continue
            if len(self.kills) % 10 == 0:
                say(f"{len(self.kills)} kills: " + ", ".join(f"{r} {n}" for r, n in
                                                            sorted(Counter(k[1] for k in self.kills).items())))

    def restore(self, deadline: float) -> bool:
        """Everything running again (the last kill's restarts may still be under way)."""
        if not self.stack.kafka.is_running():
            say("the broker is not running; starting it")
            self.stack.kafka.start()
        self.supervise()
        return wait_until(lambda: all(p.up() for p in self.stack.processes), deadline, "every process answers")


# --- reading the outcome --------------------------------------------------------------------------


class ReadSide:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.balance = make_engine(stack.database["balance"], immediate=False)
        self.notify = common_db.make_engine(stack.database["notify"], immediate=False)

    def balance_lag(self) -> int:
        ends = end_offsets(self.stack.kafka.bootstrap_servers, (DIRECTORY.name, EXCHANGES.name), timeout_s=5)
        with self.balance.connect() as conn:
            gen = active_generation(conn)
            stored = bt.positions.next_offsets(conn, generation=gen)
        return sum(max(0, end - stored.get(key, 0)) for key, end in ends.items())

    def outbox(self) -> int:
        with self.balance.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(bt.outbox)).scalar_one())

    def alert_members(self) -> dict[str, tuple[str, str]]:
        with self.balance.connect() as conn:
            return {r.event_id: (r.member_id, _KIND_OF_TYPE.get(r.type, r.type))
                    for r in conn.execute(sa.select(bt.signals))}

    def notify_lag(self) -> int:
        ends = end_offsets(self.stack.kafka.bootstrap_servers, (SIGNALS.name, DIRECTORY.name), timeout_s=5)
        with self.notify.connect() as conn:
            stored = nt.positions.next_offsets(conn)
        return sum(max(0, end - stored.get(key, 0)) for key, end in ends.items())

    def notify_unfinished(self) -> int:
        with self.notify.connect() as conn:
            pending = conn.execute(sa.select(sa.func.count()).select_from(nt.deliveries)
                                   .where(nt.deliveries.c.status == "pending")).scalar_one()
            waiting = conn.execute(sa.select(sa.func.count()).select_from(nt.alerts)
                                   .where(nt.alerts.c.status == "waiting")).scalar_one()
        return int(pending) + int(waiting)

    def deliveries(self) -> tuple[set[tuple[str, str]], list[str]]:
        """Notify's delivery log: what it calls sent, and what it left undone (pending, failed, waiting)."""
        d, a = nt.deliveries.c, nt.alerts.c
        with self.notify.connect() as conn:
            rows = conn.execute(sa.select(d.alert_id, d.recipient, d.status, d.last_error)).all()
            alerts = conn.execute(sa.select(a.event_id, a.status, a.reason)
                                  .where(a.status.in_(("waiting", "failed")))).all()
        sent = {(r.alert_id, r.recipient) for r in rows if r.status == "sent"}
        undone = [f"{r.alert_id} to {r.recipient}: {r.status} ({r.last_error})" for r in rows
                  if r.status in ("pending", "failed")]
        undone += [f"alert {r.event_id}: {r.status} ({r.reason})" for r in alerts]
        return sent, undone

    def exchanges(self) -> list[ExchangeRow]:
        with self.balance.connect() as conn:
            gen = active_generation(conn)
            x = bt.exchanges
            return [ExchangeRow(r.exchange_id, r.note[len(NOTE_PREFIX):] if r.note.startswith(NOTE_PREFIX) else None,
                                r.giver, r.receiver, r.minutes, r.status)
                    for r in conn.execute(sa.select(x.c.exchange_id, x.c.note, x.c.giver, x.c.receiver, x.c.minutes,
                                                    x.c.status).where(x.c.generation == gen))]

    def counters(self) -> dict[str, dict[str, int]]:
        """Every member's numbers over all time, summed as balance serves them (queries.member_counters)."""
        with self.balance.connect() as conn:
            gen = active_generation(conn)
            found = balance_queries.member_counters(conn, gen, None, None)
        return {member: {name: totals[name] for name in COUNTERS}
                for member, totals in ((m, balance_queries.counter_totals(kinds)) for m, kinds in found.items())}

    def directory(self, targets: set[tuple[str, ...]]) -> dict[tuple[str, ...], Any]:
        with self.balance.connect() as conn:
            gen = active_generation(conn)
            members = {r.member_id: r for r in conn.execute(
                sa.select(bt.members).where(bt.members.c.generation == gen))}
            circles = {r.circle_id: r for r in conn.execute(
                sa.select(bt.circles).where(bt.circles.c.generation == gen))}
            wanted = [target[1] for target in targets if target[0] == "correction"]
            x = bt.exchanges.c
            corrected = {r.exchange_id: (r.minutes, r.kind, r.occurred_on.isoformat()) for r in conn.execute(
                sa.select(x.exchange_id, x.minutes, x.kind, x.occurred_on)
                .where(x.generation == gen, x.exchange_id.in_(wanted)))} if wanted else {}
            memberships: dict[str, list[str]] = {}
            for r in conn.execute(sa.select(bt.memberships).where(bt.memberships.c.generation == gen)):
                memberships.setdefault(r.member_id, []).append(r.circle_id)
        seen: dict[tuple[str, ...], Any] = {}
        for target in targets:
            what, entity = target[0], target[1]
            member, circle = members.get(entity), circles.get(entity)
            if (what == "member" and member is not None) or (what == "circle" and circle is not None):
                seen[target] = True
            elif what == "leads" and circle is not None:
                seen[target] = tuple(sorted(json.loads(circle.leads or "[]")))
            elif what == "capacity" and member is not None:
                seen[target] = member.weekly_hours
            elif what == "availability" and member is not None:
                until = member.paused_until.isoformat() if member.paused_until and member.status == "paused" else None
                seen[target] = (member.status, until)
            elif what == "correction" and entity in corrected:
                seen[target] = corrected[entity]
            elif what == "circles" and member is not None:
                seen[target] = tuple(sorted(memberships.get(entity, [])))
        return seen

    def mails(self) -> list[Mail]:
        found = []
        for folder in ("new", "cur"):
            for path in sorted((self.stack.maildir / folder).glob("*")):
                with open(path, "rb") as raw:
                    message = email.message_from_binary_file(raw, policy=email.policy.default)
                alert_id, recipient = message.get("X-Reciprocity-Alert"), message.get("X-Reciprocity-Recipient")
                if alert_id and recipient:
                    found.append(Mail(str(alert_id), str(recipient), path.stat().st_mtime))
        return found


def recovery_times(kills: list[float], acknowledged: list[float]) -> list[float]:
    """For each kill, seconds until the next command was acknowledged (kills with none after them left out)."""
    done = sorted(acknowledged)
    gaps = []
    for at in kills:
        following = bisect.bisect_left(done, at)
        if following < len(done):
            gaps.append(done[following] - at)
    return gaps


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "?")
    mem_kb = next(int(x.split()[1]) for x in Path("/proc/meminfo").read_text().splitlines()
                  if x.startswith("MemTotal"))
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return f"{os.cpu_count()} cores, {model}, {mem_kb / 1024 / 1024:.1f} GiB RAM, load average {load} at start"


def main() -> int:
    # The harness's own Kafka clients (end offsets) would narrate every refused connection to stderr.
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    kills_wanted = int(os.environ.get("CHAOS_KILLS", "100"))
    chaos_seconds = float(os.environ.get("CHAOS_SECONDS", "660"))
    rate = float(os.environ.get("CHAOS_RATE", "4"))
    seed = int(os.environ.get("CHAOS_SEED", str(random.randrange(1_000_000))))
    settle_s = float(os.environ.get("CHAOS_SETTLE_S", "180"))
    run_dir = REPO / "var" / "chaos" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    began = time.monotonic()
    say(f"chaos run in {run_dir} (seed {seed}); {machine()}")
    stack = Stack.create(run_dir, extra_env={**TOKENS, **DEVELOPMENT, "LOG_LEVEL": "INFO"})
    stop_load = threading.Event()
    try:
        stack.start()
        say(f"started: kafka on {stack.kafka.bootstrap_servers}, "
            + ", ".join(f"{p.name} ({p.url or 'no port'})" for p in stack.processes))
        if not wait_until(lambda: requests.get(stack.url("ledger") + "/health", timeout=3).status_code == 200,
                          time.monotonic() + 180, "ledger healthy"):
            raise SystemExit(_dump_logs(stack.processes))
        kills: list[tuple[float, str, str]] = []
        load = Load(lambda: Client(stack.url("ledger"), TOKENS["LEDGER_TOKEN"]), seed=seed,
                    progress=lambda: len(kills) / max(kills_wanted, 1))
        load.setup()
        say(f"organisation registered ({len(load.org.sent)} commands); load at {rate}/s, kills begin")
        threads = load.run(stop_load, rate)
        chaos = Chaos(stack, random.Random(seed), kills=kills, log_path=run_dir / "logs" / "kills.log")
        sent_before = len(load.org.sent)
        chaos_began = time.monotonic()
        chaos.run(kills_wanted, chaos_seconds)
        chaos_took = time.monotonic() - chaos_began
        during = len(load.org.sent) - sent_before
        say(f"{len(chaos.kills)} kills in {chaos_took:.0f}s, {during} commands answered meanwhile "
            f"({during / chaos_took:.1f}/s); restoring every process, then stopping the load")
        deadline = time.monotonic() + settle_s
        settled = {"every process back": chaos.restore(deadline)}
        stop_load.set()
        for thread in threads:
            thread.join(timeout=max(1.0, deadline - time.monotonic()))
        outcomes = count_outcomes(load.org.sent)
        say(f"load stopped: {len(load.org.sent)} commands, outcomes {dict(sorted(outcomes.items()))}")

        read = ReadSide(stack)
        expected = load.org.expected_alerts()
        steady = {member for member, _ in expected}
        conditions: list[tuple[str, Callable[[], Any]]] = [
            ("ledger healthy", lambda: requests.get(stack.url("ledger") + "/health", timeout=3).status_code == 200),
            ("balance lag 0", lambda: read.balance_lag() == 0),
            ("expected signals raised and published", lambda: read.outbox() == 0 and steady <= {
                m for m, kind in read.alert_members().values() if kind == "overextended"}),
            ("notify lag 0, nothing pending", lambda: read.notify_lag() == 0 and read.notify_unfinished() == 0),
            ("expected emails in the mailbox", lambda: check_alerts(
                expected, read.alert_members(), read.mails(), []).delivered == len(expected)),
        ]
        for what, condition in conditions:
            settled[what] = wait_until(condition, deadline, what)

        rows = read.exchanges()
        verdict = check(load.org.sent, rows, read.counters(),
                        read.directory({s.target for s in load.org.sent if s.target is not None}))
        notify_kills = [at for at, role, _ in chaos.kills if role == "notify"]
        marked_sent, not_sent = read.deliveries()
        alerts = check_alerts(expected, read.alert_members(), read.mails(), notify_kills,
                              marked_sent=marked_sent, not_sent=not_sent)
        unexpected = Counter(kind for m, kind in read.alert_members().values() if m not in steady)
        for title, items in (("LOST", verdict.lost), ("DOUBLE-APPLIED", verdict.double_applied),
                             ("MISSING ALERT", alerts.missing), ("DUPLICATE EMAIL OUTSIDE THE SEND WINDOW",
                                                                alerts.unexplained_duplicates)):
            for item in items[:25]:
                say(f"{title}: {item}")
            if len(items) > 25:
                say(f"{title}: ... and {len(items) - 25} more")
        say(f"kills by role: {dict(sorted(Counter(k[1] for k in chaos.kills).items()))}; broker restarts took "
            + (f"{min(chaos.kafka_restart_s):.0f}-{max(chaos.kafka_restart_s):.0f}s" if chaos.kafka_restart_s else "-"))
        by_action = Counter(s.action for s in load.org.sent if s.outcome == "acknowledged")
        say(f"acknowledged by kind: {dict(sorted(by_action.items()))}")
        say(f"commands: {dict(sorted(outcomes.items()))}, {load.retried} of them retried; ledger 500s seen: "
            f"{sum(c.server_errors for c in load.clients)}; exchanges in the read model: {len(rows)}")
        for role in ("ledger", "kafka"):
            gaps = recovery_times([at for at, r, _ in chaos.kills if r == role], load.acknowledged_at)
            if gaps:
                say(f"after a {role} kill, the next 201 came after {statistics.median(gaps):.1f}s (median), "
                    f"{max(gaps):.1f}s (max) over {len(gaps)} kills")
        say(f"processes that exited by themselves (restarted): {len(chaos.exits)}"
            + "".join(f"; {name} (code {code})" for _, name, code in chaos.exits[:10]))
        say(f"signals about members who should raise none: {dict(unexpected) or 'none'}")
        say(f"whole run {time.monotonic() - began:.0f}s (kills {chaos_took:.0f}s); logs in {run_dir}")
        unsettled = [what for what, done in settled.items() if not done]
        if unsettled:
            say(f"NOT SETTLED within {settle_s:.0f}s: {', '.join(unsettled)} (a service that never recovered)")
        ok = verdict.ok and alerts.ok and not unsettled
        if not ok:
            _dump_logs(stack.processes, lines=15)
        stack.stop()  # before the last line, so that nothing the stopping prints comes after it
        print(last_line(len(chaos.kills), verdict, alerts), flush=True)
        return 0 if ok else 1
    finally:
        stop_load.set()
        stack.stop()


def _dump_logs(processes: list[Process], lines: int = 40) -> int:
    for process in processes:
        print(f"--- {process.name} ({process.log_path}) ---\n{process.log_tail(lines)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
