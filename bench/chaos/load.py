"""A steady load of commands through the ledger's API, like a patient real client would send them.

Every command has its own Idempotency-Key and is retried with the same key and body on a timeout, a
refused connection or a 5xx (503 while Kafka or the ledger's state is away, honouring Retry-After)
until the ledger gives a definitive answer or the client gives up; each command's outcome is kept
(`check.Sent`) for the verdict.

The organisation is shaped so that the alerts the run must produce are known in advance:
- "steady" members (over-givers) each record, as givers, hour-long exchanges that nobody returns, so
  each crosses the over-extension line (240 minutes given, 3x what was received) once, and their
  circle's two leads must each get one email. Their exchanges are never disputed or withdrawn, their
  leads are never paused and take part in nothing else, so nothing clears or reroutes those alerts.
- everyone else gives at most BUDGET_MINUTES in the window, and declares capacities above that, so
  none of them is ever over-extended; their exchanges are dated within the last 20 days, so nobody is
  ever disconnected (21 days). They are the churn: recordings, acknowledgements, disputes,
  withdrawals, capacities, pauses, circle changes, new members, new circles and lead changes.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import requests
from reciprocity.contracts.ids import exchange_id_for
from reciprocity.contracts.vocabulary import EXCHANGE_KINDS

from .check import ACKNOWLEDGED, DIRECTORY, RECORD, REFUSED, UNCHANGED, UNKNOWN, Sent

BUDGET_MINUTES = 200  # below the 240 minutes of the over-extension rule, and below every capacity
STEADY_MINUTES = 60
STEADY_TARGET_MINUTES = 300  # each over-giver stops once this much is acknowledged
NOTE_PREFIX = "chaos "


def today() -> date:
    return datetime.now(UTC).date()


@dataclass
class Answer:
    outcome: str
    status: int | None
    body: Any
    attempts: int


class Client:
    """The ledger's API with a real client's patience: retries on what may pass, gives up after
    `give_up_s` (the outcome is then unknown: the command may or may not have been appended)."""

    def __init__(self, base_url: str, token: str, *, give_up_s: float = 90.0, timeout_s: float = 4.0) -> None:
        self.base_url = base_url
        self.token = token
        self.give_up_s = give_up_s
        self.timeout_s = timeout_s
        self.session = requests.Session()
        self.server_errors = 0  # 500s seen (a 500 is a bug even when a retry then succeeds)

    def send(self, method: str, path: str, body: dict[str, Any], key: str) -> Answer:
        deadline = time.monotonic() + self.give_up_s
        attempts, backoff = 0, 0.25
        last_status: int | None = None
        while True:
            attempts += 1
            wait = backoff
            try:
                answer = self.session.request(method, self.base_url + path, json=body, timeout=(2.0, self.timeout_s),
                                              headers={"Authorization": f"Bearer {self.token}",
                                                       "Idempotency-Key": key})
                last_status = answer.status_code
                if answer.status_code == 201:
                    return Answer(ACKNOWLEDGED, 201, answer.json(), attempts)
                if answer.status_code == 200:
                    return Answer(UNCHANGED, 200, answer.json(), attempts)
                if 400 <= answer.status_code < 500:
                    return Answer(REFUSED, answer.status_code, _json(answer), attempts)
                if answer.status_code == 500:
                    self.server_errors += 1
                retry_after = answer.headers.get("Retry-After")
                if retry_after and retry_after.isdigit():
                    wait = min(float(retry_after), 2.0)
            except requests.RequestException:
                self.session.close()  # a half-read connection to a killed server is no use
                self.session = requests.Session()
            if time.monotonic() + wait > deadline:
                return Answer(UNKNOWN, last_status, None, attempts)
            time.sleep(wait)
            backoff = min(backoff * 2, 2.0)


def _json(answer: requests.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return answer.text[:300]


@dataclass
class Member:
    id: str
    circles: list[str]
    given: int = 0  # minutes of every recording sent as giver (any outcome: conservative)
    steady: bool = False
    lead: bool = False  # a lead of a steady circle: takes part in nothing
    acknowledged_given: int = 0


@dataclass
class Pending:
    exchange_id: str
    giver: str
    receiver: str
    recorded_by: str
    steady: bool
    minutes: int = 0
    note: str = ""


@dataclass
class Organisation:
    """What the load knows of the ledger's state: only what the ledger acknowledged. Anything a command
    is in flight on is `busy`, so commands on one entity go one at a time, in order."""

    rng: random.Random
    members: dict[str, Member] = field(default_factory=dict)
    circles: list[str] = field(default_factory=list)
    leads_of: dict[str, list[str]] = field(default_factory=dict)  # steady circle -> its two leads
    pending: list[Pending] = field(default_factory=list)
    busy: set[str] = field(default_factory=set)
    sent: list[Sent] = field(default_factory=list)
    seq: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: int = 0

    def next_name(self, what: str) -> str:
        self.counter += 1
        return f"{what}-{self.counter}"

    def churn_members(self) -> list[Member]:
        return [m for m in self.members.values() if not m.steady and not m.lead and m.id not in self.busy]

    def steady_members(self) -> list[Member]:
        return [m for m in self.members.values() if m.steady]

    def expected_alerts(self) -> set[tuple[str, str]]:
        """(member, lead) pairs that must get an over-extension email: what the ledger acknowledged
        crosses 240 minutes with nothing received."""
        return {(m.id, lead) for m in self.steady_members() if m.acknowledged_given >= 240
                for circle in m.circles for lead in self.leads_of.get(circle, [])}


@dataclass
class Command:
    method: str
    path: str
    body: dict[str, Any]
    action: str
    busy: list[str]
    exchange_id: str | None = None
    target: tuple[str, ...] | None = None
    value: Any = None
    on_done: Callable[[Answer], None] | None = None
    key: str = field(default_factory=lambda: str(uuid.uuid4()))


class Load:
    def __init__(self, client_factory: Callable[[], Client], *, seed: int = 7, churn_members: int = 60,
                 steady_members: int = 6, churn_circles: int = 6,
                 progress: Callable[[], float] = lambda: 1.0) -> None:
        self.org = Organisation(rng=random.Random(seed))
        # How far the run is (0 to 1): steady member i starts giving at i / steady_members of it, so their
        # alerts (and notify's sending) are spread over the kills instead of all coming at the start.
        self.progress = progress
        self.client_factory = client_factory
        self.churn_members = churn_members
        self.steady_members = steady_members
        self.churn_circles = churn_circles
        self.clients: list[Client] = []
        self.acknowledged_at: list[float] = []  # epoch seconds of each 201, for recovery times
        self.retried = 0  # commands that needed more than one attempt (same key, same body)

    # --- setup (before any kill) --------------------------------------------------------------------

    def setup(self) -> None:
        client = self.client_factory()
        self.clients.append(client)
        org = self.org
        for i in range(self.churn_circles):
            self._run(client, self._form_circle(f"churn-{i}"))
        for i in range(self.steady_members):
            circle = f"steady-{i}"
            self._run(client, self._form_circle(circle))
            leads = [f"{circle}-lead-a", f"{circle}-lead-b"]
            for lead in leads:
                self._run(client, self._register(lead, [], lead=True))
            self._run(client, self._set_leads(circle, leads))
            org.leads_of[circle] = leads
            self._run(client, self._register(f"{circle}-giver", [circle], steady=True))
        for _ in range(self.churn_members):
            self._run(client, self._register(org.next_name("member"), org.rng.sample(org.circles, 2)))
        missing = [s.tag for s in org.sent if s.outcome != ACKNOWLEDGED]
        if missing:
            raise RuntimeError(f"setup commands not acknowledged with nothing killed: {missing[:5]}")

    # --- the steady load ------------------------------------------------------------------------------

    def run(self, stop: threading.Event, rate_per_s: float, threads: int = 3) -> list[threading.Thread]:
        """Start `threads` clients sending about `rate_per_s` commands a second together until `stop`."""
        def worker(n: int) -> None:
            client = self.client_factory()
            self.clients.append(client)
            interval = threads / rate_per_s
            next_at = time.monotonic() + n * interval / threads
            while not stop.is_set():
                with self.org.lock:
                    command = self._pick()
                    if command is not None:
                        self.org.busy.update(command.busy)
                if command is not None:
                    self._run(client, command)
                next_at = max(next_at + interval, time.monotonic())
                stop.wait(max(0.0, next_at - time.monotonic()))

        started = [threading.Thread(target=worker, args=(n,), name=f"chaos-load-{n}", daemon=True)
                   for n in range(threads)]
        for thread in started:
            thread.start()
        return started

    def _run(self, client: Client, command: Command) -> Answer:
        answer = client.send(command.method, command.path, command.body, command.key)
        with self.org.lock:
            if answer.outcome == ACKNOWLEDGED:
                self.acknowledged_at.append(time.time())
            if answer.attempts > 1:
                self.retried += 1
            self.org.seq += 1
            self.org.sent.append(Sent(tag=command.key, action=command.action, outcome=answer.outcome,
                                      exchange_id=command.exchange_id, target=command.target,
                                      value=command.value, seq=self.org.seq))
            if command.on_done is not None:
                command.on_done(answer)
            self.org.busy.difference_update(command.busy)
        return answer

    def _pick(self) -> Command | None:
        org, rng = self.org, self.org.rng
        roll = rng.random()
        steady = org.steady_members()
        started = int(self.progress() * len(steady)) + 1
        steady_due = [m for m in steady[:started]
                      if m.acknowledged_given < STEADY_TARGET_MINUTES and m.id not in org.busy]
        if roll < 0.15 and steady_due:
            return self._record_steady(min(steady_due, key=lambda m: m.acknowledged_given))
        if roll < 0.48:
            return self._record_churn()
        if roll < 0.66:
            return self._transition("acknowledge")
        if roll < 0.73:
            return self._transition("dispute")
        if roll < 0.80:
            return self._transition("withdraw")
        if roll < 0.84:
            return self._correct()
        if roll < 0.87:
            return self._capacity()
        if roll < 0.90:
            return self._availability()
        if roll < 0.93:
            return self._change_circles()
        if roll < 0.96:
            name = org.next_name("member")
            return self._register(name, rng.sample(org.circles, rng.randint(1, 2)))
        if roll < 0.98:
            return self._churn_leads()
        circle = org.next_name("circle")
        return self._form_circle(circle, parent=rng.choice(org.circles))

    # --- commands ---------------------------------------------------------------------------------------

    def _form_circle(self, circle_id: str, parent: str | None = None) -> Command:
        org = self.org

        def done(answer: Answer) -> None:
            if answer.outcome == ACKNOWLEDGED and not circle_id.startswith("steady-"):
                org.circles.append(circle_id)

        body: dict[str, Any] = {"id": circle_id, "name": f"Circle {circle_id}"}
        if parent:
            body["parent"] = parent
        return Command("POST", "/v1/circles", body, DIRECTORY, [circle_id], target=("circle", circle_id),
                       value=True, on_done=done)

    def _register(self, member_id: str, circles: list[str], *, steady: bool = False, lead: bool = False) -> Command:
        org = self.org

        def done(answer: Answer) -> None:
            if answer.outcome == ACKNOWLEDGED:
                org.members[member_id] = Member(member_id, sorted(circles), steady=steady, lead=lead)

        body = {"id": member_id, "name": f"Member {member_id}", "email": f"{member_id}@chaos.example.org",
                "circles": circles, "role": "member"}
        return Command("POST", "/v1/members", body, DIRECTORY, [member_id], target=("member", member_id),
                       value=True, on_done=done)

    def _set_leads(self, circle_id: str, leads: list[str]) -> Command:
        return Command("PUT", f"/v1/circles/{circle_id}/leads", {"leads": leads}, DIRECTORY, [circle_id],
                       target=("leads", circle_id), value=tuple(sorted(leads)))

    def _churn_leads(self) -> Command | None:
        org = self.org
        circles = [c for c in org.circles if c not in org.busy]
        churn = org.churn_members()
        if not circles or len(churn) < 2:
            return None
        leads = [m.id for m in org.rng.sample(churn, org.rng.randint(0, 2))]
        return self._set_leads(org.rng.choice(circles), leads)

    def _capacity(self) -> Command | None:
        churn = self.org.churn_members()
        if not churn:
            return None
        member = self.org.rng.choice(churn)
        hours = float(self.org.rng.randint(10, 40))  # 600 minutes and more: above any churn member's budget
        return Command("PUT", f"/v1/members/{member.id}/capacity", {"weekly_hours": hours}, DIRECTORY, [member.id],
                       target=("capacity", member.id), value=hours)

    def _availability(self) -> Command | None:
        churn = self.org.churn_members()
        if not churn:
            return None
        member = self.org.rng.choice(churn)
        if self.org.rng.random() < 0.5:
            until = (today() + timedelta(days=self.org.rng.randint(1, 60))).isoformat()
            body: dict[str, Any] = {"status": "paused", "paused_until": until}
            value: tuple[str, str | None] = ("paused", until)
        else:
            body, value = {"status": "active"}, ("active", None)
        return Command("PUT", f"/v1/members/{member.id}/availability", body, DIRECTORY, [member.id],
                       target=("availability", member.id), value=value)

    def _change_circles(self) -> Command | None:
        org = self.org
        churn = org.churn_members()
        if not churn:
            return None
        member = org.rng.choice(churn)
        circles = sorted(org.rng.sample(org.circles, org.rng.randint(1, 3)))

        def done(answer: Answer) -> None:
            if answer.outcome in (ACKNOWLEDGED, UNCHANGED):
                member.circles = circles

        return Command("PUT", f"/v1/members/{member.id}/circles", {"circles": circles}, DIRECTORY, [member.id],
                       target=("circles", member.id), value=tuple(circles), on_done=done)

    def _record(self, giver: Member, receiver: Member, minutes: int, recorded_by: str, steady: bool) -> Command:
        org = self.org
        key = str(uuid.uuid4())
        exchange_id = exchange_id_for(key)
        giver.given += minutes
        days_back = 0 if steady else org.rng.randint(0, 20)
        body = {"giver": giver.id, "receiver": receiver.id, "kind": org.rng.choice(EXCHANGE_KINDS), "minutes": minutes,
                "note": f"{NOTE_PREFIX}{key}", "occurred_on": (today() - timedelta(days=days_back)).isoformat(),
                "recorded_by": recorded_by}

        def done(answer: Answer) -> None:
            if answer.outcome == ACKNOWLEDGED:
                giver.acknowledged_given += minutes
                org.pending.append(Pending(exchange_id, giver.id, receiver.id, recorded_by, steady, minutes,
                                           body["note"]))

        return Command("POST", "/v1/exchanges", body, RECORD, [giver.id, receiver.id], exchange_id=exchange_id,
                       on_done=done, key=key)

    def _record_steady(self, giver: Member) -> Command | None:
        receivers = self.org.churn_members()
        if not receivers:
            return None
        return self._record(giver, self.org.rng.choice(receivers), STEADY_MINUTES, giver.id, steady=True)

    def _record_churn(self) -> Command | None:
        org = self.org
        churn = org.churn_members()
        minutes = org.rng.randint(1, 6)
        givers = [m for m in churn if m.given + minutes <= BUDGET_MINUTES]
        if not givers or len(churn) < 2:
            return None
        giver = org.rng.choice(givers)
        receiver = org.rng.choice([m for m in churn if m.id != giver.id])
        return self._record(giver, receiver, minutes, org.rng.choice([giver.id, receiver.id]), steady=False)

    def _correct(self) -> Command | None:
        """The recorder corrects a still-recorded exchange of the churn: fewer minutes (never over a giver's
        budget), another kind and day; the note (with the command tag) stays."""
        org = self.org
        choices = [p for p in org.pending if not p.steady]
        if not choices:
            return None
        chosen = org.rng.choice(choices)
        org.pending.remove(chosen)
        minutes = org.rng.randint(1, chosen.minutes)
        kind = org.rng.choice(EXCHANGE_KINDS)
        day = (today() - timedelta(days=org.rng.randint(0, 20))).isoformat()
        body = {"by": chosen.recorded_by, "kind": kind, "minutes": minutes, "occurred_on": day,
                "note": chosen.note}

        def done(answer: Answer) -> None:
            if answer.outcome != REFUSED:  # still recorded (whatever the minutes now are): correctable again
                if answer.outcome == ACKNOWLEDGED:
                    chosen.minutes = minutes
                org.pending.append(chosen)

        return Command("POST", f"/v1/exchanges/{chosen.exchange_id}/correct", body, "correct", [],
                       exchange_id=chosen.exchange_id, target=("correction", chosen.exchange_id),
                       value=(minutes, kind, day), on_done=done)

    def _transition(self, action: str) -> Command | None:
        org = self.org
        choices = [p for p in org.pending if not (p.steady and action != "acknowledge")]
        if not choices:
            return None
        chosen = org.rng.choice(choices)
        org.pending.remove(chosen)  # whatever the answer, it is not `recorded` for the load any more
        other = chosen.receiver if chosen.recorded_by == chosen.giver else chosen.giver
        body: dict[str, Any]
        if action == "acknowledge":
            body = {"by": other, "thanks": "thank you"}
        elif action == "dispute":
            body = {"by": other, "reason": "I do not remember this one"}
        else:
            body = {"by": chosen.recorded_by}
        return Command("POST", f"/v1/exchanges/{chosen.exchange_id}/{action}", body, action, [],
                       exchange_id=chosen.exchange_id)


def count_outcomes(sent: list[Sent]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in sent:
        counts[s.outcome] = counts.get(s.outcome, 0) + 1
    return counts


__all__ = ["NOTE_PREFIX", "REFUSED", "UNKNOWN", "Client", "Load", "count_outcomes"]
