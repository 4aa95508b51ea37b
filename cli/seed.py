"""`reciprocity seed --demo`: a believable organisation, created through the ledger's HTTP API.

Riverbend Co-op: a `commons` circle holding everyone, with `engineering` (and `platform` nested in it),
`design`, `care-team`, `ops` and a cross-cutting `learning` guild; 45 members with leads for every
circle, an operator, declared capacities, one paused member, and about four months of exchanges of
every kind: most acknowledged with thanks, recent ones still pending, a few disputed or withdrawn,
some shared on the appreciation wall. A few members trip the alert policy on purpose:

- amara-okafor mentors a lot and has received nothing for four weeks (over-extended: ratio);
- tomas-lindqvist declared 2 hours a week and gave about 4 in the last 7 days (over-extended: capacity);
- jonas-weber is active but has not exchanged with anyone for over five weeks (disconnected);
- ines-carvalho is paused, and quiet too, which raises nothing.

Deterministic (a seeded random generator) and idempotent: every command's Idempotency-Key names its
item ("seed-demo/v1/exchange/17/ack"), so running it again appends nothing new. Days are relative to
the first run: a later run reads the first demo exchange back and reuses that anchor, so its bodies
(and keys) are the same. `--if-empty` does nothing when the ledger already has members.

Demo sign-in passwords go to the web's database (`reciprocity.web.accounts.set_password`), never to
the event log.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from reciprocity.cli import credentials
from reciprocity.common.service_client import ClientError, NotFound
from reciprocity.contracts.commands import today_utc
from reciprocity.contracts.ids import exchange_id_for
from reciprocity.contracts.vocabulary import ACKNOWLEDGED, DISPUTED, PAUSED, RECORDED, WITHDRAWN, Kind
from reciprocity.ledger.client import LedgerClient

SEED = 20240917
DAYS = 120  # about four months of history, well inside the ledger's 365 days
KEY_PREFIX = "seed-demo/v1"  # raise the version when the plan changes: old keys would carry other bodies
DEMO_PASSWORD = "reciprocity-demo"
DOMAIN = "example.org"

MENTOR = "amara-okafor"
OVER_CAPACITY = "tomas-lindqvist"
DISCONNECTED_MEMBER = "jonas-weber"
PAUSED_MEMBER = "ines-carvalho"
OPERATOR = "noor-haddad"
LEAD = "priya-raman"
REGULAR = "lukas-brandt"
SPECIAL = {MENTOR, OVER_CAPACITY, DISCONNECTED_MEMBER, PAUSED_MEMBER}

# (id, name, parent, leads), parents before children.
CIRCLES: list[tuple[str, str, str | None, list[str]]] = [
    ("commons", "Commons", None, ["maria-santos", "kwame-mensah"]),
    ("engineering", "Engineering", "commons", [LEAD, "kwame-mensah"]),
    ("platform", "Platform", "engineering", ["daniel-cohen"]),
    ("design", "Design", "commons", ["sofia-rossi"]),
    ("care-team", "Care team", "commons", ["fatima-zahra"]),
    ("ops", "Operations", "commons", ["henrik-larsen"]),
    ("learning", "Learning guild", "commons", ["grace-kim", LEAD]),
]

# (id, name, working circles); everyone is also in `commons`.
PEOPLE: list[tuple[str, str, list[str]]] = [
    (MENTOR, "Amara Okafor", ["engineering", "learning"]),
    (LEAD, "Priya Raman", ["engineering", "platform"]),
    (REGULAR, "Lukas Brandt", ["engineering"]),
    ("daniel-cohen", "Daniel Cohen", ["engineering", "platform"]),
    ("mei-lin-chen", "Mei-Lin Chen", ["platform"]),
    (OVER_CAPACITY, "Tomás Lindqvist", ["platform", "ops"]),
    (DISCONNECTED_MEMBER, "Jonas Weber", ["ops"]),
    (PAUSED_MEMBER, "Inês Carvalho", ["design"]),
    (OPERATOR, "Noor Haddad", ["ops"]),
    ("sofia-rossi", "Sofia Rossi", ["design"]),
    ("fatima-zahra", "Fatima Zahra", ["care-team"]),
    ("henrik-larsen", "Henrik Larsen", ["ops"]),
    ("grace-kim", "Grace Kim", ["learning", "design"]),
    ("maria-santos", "María Santos", ["care-team"]),
    ("kwame-mensah", "Kwame Mensah", ["engineering"]),
    ("aiko-tanaka", "Aiko Tanaka", ["design"]),
    ("yusuf-demir", "Yusuf Demir", ["engineering"]),
    ("elena-petrova", "Elena Petrova", ["care-team"]),
    ("samuel-adeyemi", "Samuel Adeyemi", ["ops"]),
    ("chloe-martin", "Chloé Martin", ["engineering", "learning"]),
    ("rafael-gomez", "Rafael Gómez", ["platform"]),
    ("hannah-schmidt", "Hannah Schmidt", ["care-team", "learning"]),
    ("arjun-mehta", "Arjun Mehta", ["engineering"]),
    ("lena-novak", "Lena Novák", ["design"]),
    ("omar-farouk", "Omar Farouk", ["ops"]),
    ("isabel-ferreira", "Isabel Ferreira", ["care-team"]),
    ("ben-oconnor", "Ben O'Connor", ["engineering"]),
    ("zara-ahmed", "Zara Ahmed", ["design", "learning"]),
    ("nikolai-ivanov", "Nikolai Ivanov", ["platform"]),
    ("lucia-moreno", "Lucía Moreno", ["care-team"]),
    ("tariq-hassan", "Tariq Hassan", ["ops"]),
    ("emma-johansson", "Emma Johansson", ["engineering"]),
    ("kofi-boateng", "Kofi Boateng", ["learning"]),
    ("ana-lima", "Ana Lima", ["design"]),
    ("david-levi", "David Levi", ["platform"]),
    ("sara-nilsson", "Sara Nilsson", ["care-team"]),
    ("matteo-bianchi", "Matteo Bianchi", ["engineering"]),
    ("leila-karimi", "Leila Karimi", ["care-team", "learning"]),
    ("pedro-alves", "Pedro Alves", ["ops"]),
    ("julia-wojcik", "Julia Wójcik", ["design"]),
    ("femi-adebayo", "Femi Adebayo", ["engineering"]),
    ("clara-dubois", "Clara Dubois", ["care-team"]),
    ("ravi-iyer", "Ravi Iyer", ["platform"]),
    ("hana-sato", "Hana Sato", ["learning"]),
    ("oscar-nyberg", "Oscar Nyberg", ["ops"]),
]

# Declared weekly capacities in hours; the others declare none. Raised where the history needs it, so
# only OVER_CAPACITY works past theirs.
CAPACITIES = {OVER_CAPACITY: 2.0, "sofia-rossi": 6.0, "daniel-cohen": 8.0, "fatima-zahra": 5.0, "grace-kim": 6.0,
              "hannah-schmidt": 4.0, "kwame-mensah": 6.0, "elena-petrova": 5.0, "ravi-iyer": 4.0, LEAD: 8.0}

KIND_WEIGHTS = {Kind.HELP: 30, Kind.FEEDBACK: 20, Kind.KNOWLEDGE: 15, Kind.MENTORING: 12, Kind.CARE: 13,
                Kind.RESOURCE: 10}
MINUTES = {"mentoring": (30, 90), "feedback": (15, 45), "help": (15, 120), "knowledge": (20, 60),
           "resource": (10, 60), "care": (15, 60)}
NOTES = {
    "mentoring": ["Career conversation over coffee", "Walked through how we estimate work", "Pairing on my first "
                  "big refactor", "Talked through the promotion framework", "Weekly mentoring check-in",
                  "Helped me plan my learning goals for the quarter"],
    "feedback": ["Reviewed my proposal for the onboarding flow", "Feedback on the workshop slides", "Detailed code "
                 "review on the billing change", "Honest notes on my facilitation", "Read my draft of the handbook"],
    "help": ["Covered my on-call shift", "Unblocked the CI pipeline", "Helped move the studio furniture",
             "Sorted out the supplier invoices", "Debugged the printer for an hour", "Took over the meeting notes",
             "Set up my new laptop"],
    "knowledge": ["Explained how the accounting export works", "Shared the research on member surveys",
                  "Walkthrough of the deploy scripts", "Intro to accessibility testing", "Explained the grant rules"],
    "resource": ["Lent me the good camera for the shoot", "Shared the interview templates", "Gave me the spare "
                 "monitor", "Passed on the conference ticket", "Shared the design system tokens"],
    "care": ["Checked in on me after a rough week", "Brought soup when I was sick", "Listened when I needed to vent",
             "Took the kids for an afternoon", "Walk and talk after the difficult meeting"],
}
THANKS = ["Thank you, this made my week!", "Really appreciated, thanks.", "So helpful, thank you!",
          "Thanks, I owe you one.", "That changed how I work, thank you.", "Grateful for your patience!",
          "Thanks for making the time.", "", "", "Much appreciated."]
DISPUTES = ["I think this was someone else", "That session was cancelled", "The minutes look far too high",
            "We planned it but it never happened"]


@dataclass
class PlannedExchange:
    day: int  # days relative to the anchor (<= 0)
    giver: str
    receiver: str
    kind: str
    minutes: int
    note: str
    recorded_by: str
    shared: bool
    outcome: str = RECORDED  # one of EXCHANGE_STATUSES
    thanks: str = ""
    ack_shared: bool = False
    reason: str = ""

    @property
    def other_party(self) -> str:
        return self.receiver if self.recorded_by == self.giver else self.giver

    @property
    def counts(self) -> bool:
        """Counted by the alert policy: pending and settled alike, never disputed or withdrawn."""
        return self.outcome in (RECORDED, ACKNOWLEDGED)


@dataclass
class DemoPlan:
    exchanges: list[PlannedExchange]
    capacities: dict[str, float]
    pause_days: int = 30  # PAUSED_MEMBER is paused until anchor + this


def _circles_of(member_id: str) -> list[str]:
    return ["commons", *next(c for m, _, c in PEOPLE if m == member_id)]


def plan(seed: int = SEED) -> DemoPlan:
    """The whole demo history as day offsets: deterministic for a seed, independent of today's date."""
    rng = random.Random(seed)
    ids = [m for m, _, _ in PEOPLE]
    normal = [m for m in ids if m not in SPECIAL]
    mates: dict[str, list[str]] = {
        m: [o for o in ids if o != m and set(_circles_of(o)[1:]) & set(_circles_of(m)[1:])] for m in ids
    }

    def exchange(day: int, giver: str, receiver: str, kind: str | None = None, minutes: int | None = None,
                 ) -> PlannedExchange:
        kind = kind or rng.choices(list(KIND_WEIGHTS), list(KIND_WEIGHTS.values()))[0]
        low, high = MINUTES[kind]
        minutes = minutes or 5 * rng.randint(low // 5, high // 5)
        recorder = giver if rng.random() < 0.6 else receiver
        return PlannedExchange(day, giver, receiver, kind, minutes, rng.choice(NOTES[kind]), recorder,
                               shared=rng.random() < 0.25)

    def partner(member: str, pool: list[str] | None = None) -> str:
        own = [o for o in mates[member] if pool is None or o in pool]
        anyone = [o for o in (pool or ids) if o != member]
        return rng.choice(own) if own and rng.random() < 0.7 else rng.choice(anyone)

    history: list[PlannedExchange] = []
    for member in ids:
        for week in range(DAYS // 7 + 1):
            for _ in range(rng.choice([0, 1, 1, 2, 2, 3])):
                day = -(week * 7 + rng.randint(0, 6))
                if day > -DAYS:
                    history.append(exchange(day, member, partner(member)))

    # The members who trip the policy, and the one who is paused.
    history = [x for x in history if not (
        (DISCONNECTED_MEMBER in (x.giver, x.receiver) and x.day > -38)
        or (PAUSED_MEMBER in (x.giver, x.receiver) and x.day > -26)
        or (MENTOR in (x.giver, x.receiver) and x.day > -28)
        or (x.giver == OVER_CAPACITY and x.day > -7)
    )]
    mentees = [REGULAR, "chloe-martin", "mei-lin-chen", "arjun-mehta", "hana-sato", "kofi-boateng", "femi-adebayo"]
    for day, mentee in zip([-26, -22, -19, -15, -11, -6, -2], mentees, strict=True):
        x = exchange(day, MENTOR, mentee, "mentoring", 5 * rng.randint(12, 18))
        x.recorded_by = MENTOR if day > -6 else rng.choice([MENTOR, mentee])
        history.append(x)
    for day in (-6, -4, -3, -1):
        history.append(exchange(day, OVER_CAPACITY, partner(OVER_CAPACITY, normal), rng.choice(["help", "knowledge"]),
                                5 * rng.randint(11, 14)))

    _settle(history, rng)
    # OVER_CAPACITY gives past their capacity but not three times what they receive: one signal reason.
    while _window(history, OVER_CAPACITY, 28)[0] >= 2 * _window(history, OVER_CAPACITY, 28)[1]:
        x = exchange(-rng.randint(8, 20), partner(OVER_CAPACITY, normal), OVER_CAPACITY, "help", 60)
        x.outcome, x.thanks = ACKNOWLEDGED, rng.choice(THANKS)
        history.append(x)
    _keep_everyone_connected(history, normal, exchange, partner, rng)
    _balance(history, normal, exchange, partner, rng)

    capacities = dict(CAPACITIES)
    for member, hours in CAPACITIES.items():
        if member != OVER_CAPACITY:
            given_7 = sum(x.minutes for x in history if x.giver == member and x.day > -7 and x.counts)
            capacities[member] = max(hours, math.ceil(given_7 * 1.5 / 60) + 1.0)
    history.sort(key=lambda x: (x.day, x.giver, x.receiver, x.kind, x.minutes))
    return DemoPlan(history, capacities)


def _settle(history: list[PlannedExchange], rng: random.Random) -> None:
    """Most of the past is acknowledged; the last two weeks are still partly pending."""
    for x in history:
        roll = rng.random()
        recent = x.day > -14
        if x.giver == MENTOR or x.giver == OVER_CAPACITY:
            x.outcome = RECORDED if x.day > -5 or roll < 0.2 else ACKNOWLEDGED
        elif roll < (0.03 if recent else 0.05):
            x.outcome, x.reason = DISPUTED, rng.choice(DISPUTES)
        elif roll < (0.05 if recent else 0.09):
            x.outcome = WITHDRAWN
        elif roll < (0.55 if recent else 0.15):
            x.outcome = RECORDED
        else:
            x.outcome = ACKNOWLEDGED
        if x.outcome == ACKNOWLEDGED:
            x.thanks = rng.choice(THANKS)
            x.ack_shared = x.shared and rng.random() < 0.7


def _window(history: list[PlannedExchange], member: str, days: int) -> tuple[int, int]:
    given = sum(x.minutes for x in history if x.giver == member and x.day > -days and x.counts)
    received = sum(x.minutes for x in history if x.receiver == member and x.day > -days and x.counts)
    return given, received


def _keep_everyone_connected(history: list[PlannedExchange], normal: list[str], exchange: Callable[..., Any],
                             partner: Callable[..., str], rng: random.Random) -> None:
    """Every ordinary member exchanged within the last two weeks (nobody else looks disconnected)."""
    for member in normal:
        if not any(member in (x.giver, x.receiver) and x.day > -14 and x.counts for x in history):
            x = exchange(-rng.randint(1, 10), partner(member, normal), member, "help", 30)
            x.outcome, x.thanks = ACKNOWLEDGED, rng.choice(THANKS)
            history.append(x)


def _balance(history: list[PlannedExchange], normal: list[str], exchange: Callable[..., Any],
             partner: Callable[..., str], rng: random.Random) -> None:
    """Ordinary members stay clear of the ratio rule: whoever gave 240+ minutes in 28 days and at least
    twice what they received gets something back from someone who can afford to give."""
    for _ in range(200):
        heavy = [m for m in normal if (g := _window(history, m, 28))[0] >= 240 and g[0] >= 2 * g[1]]
        if not heavy:
            return
        for member in heavy:
            givers = [o for o in normal if o != member and _window(history, o, 28)[0] + 60 < 240]
            x = exchange(-rng.randint(1, 20), partner(member, givers or normal), member, None, None)
            x.outcome, x.thanks = ACKNOWLEDGED, rng.choice(THANKS)
            history.append(x)
    raise RuntimeError("the demo plan did not balance; change SEED")


# --- applying the plan through the ledger -------------------------------------------------------------------


@dataclass
class SeedSummary:
    circles: int = 0
    members: int = 0
    exchanges: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)
    shared: int = 0
    commands: int = 0
    appended: int = 0  # commands that appended (the rest were replays of an earlier run)
    anchor: date | None = None
    skipped: str | None = None  # why nothing was done (--if-empty)
    passwords: str = "not set"
    seconds: float = 0.0
    sign_in: list[tuple[str, str]] = field(default_factory=list)


def _find_anchor(client: LedgerClient, exchanges: list[PlannedExchange]) -> date:
    """The anchor of an earlier run (the day of the exchange it recorded first, minus that exchange's
    offset), else today. The newest exchange is recorded first, so even an interrupted run has it."""
    n = len(exchanges) - 1
    try:
        earlier = client.exchange(exchange_id_for(f"{KEY_PREFIX}/exchange/{n}"))
    except NotFound:
        return today_utc()
    if earlier.occurred_on is None:
        return today_utc()
    return earlier.occurred_on - timedelta(days=exchanges[n].day)


def seed_demo(ledger_url: str, token: str, *, if_empty: bool = False, web_database_url: str | None = None,
              password: str = DEMO_PASSWORD, progress: Callable[[str], None] | None = None) -> SeedSummary:
    """Create (or complete) the demo organisation through the ledger at `ledger_url`.

    With `web_database_url`, every demo member gets `password` for signing in to the web.
    Raises ClientError when the ledger refuses something (which a correct plan never causes).
    """
    began = time.monotonic()
    say = progress or (lambda _line: None)
    summary = SeedSummary()
    demo = plan()
    with LedgerClient.patient(ledger_url, token) as client:
        if if_empty and (members := client.stats()["members"]) > 0:
            summary.skipped = f"the directory already has {members} members"
            return summary
        anchor = _find_anchor(client, demo.exchanges)
        summary.anchor = anchor

        def send(method: str, path: str, body: dict[str, Any], key: str) -> dict[str, Any]:
            answer = client.command(method, path, body, key=f"{KEY_PREFIX}/{key}")
            summary.commands += 1
            summary.appended += 0 if answer.replayed or answer.status == 200 else 1
            if summary.commands % 250 == 0:
                say(f"  {summary.commands} commands sent ({summary.appended} appended)")
            return answer.body

        for circle_id, name, parent, _leads in CIRCLES:
            send("POST", "/v1/circles", {"id": circle_id, "name": name, "parent": parent}, f"circle/{circle_id}")
        operators = {OPERATOR}
        for member_id, name, _ in PEOPLE:
            body: dict[str, object] = {"id": member_id, "name": name, "email": f"{member_id}@{DOMAIN}",
                    "circles": _circles_of(member_id), "role": "operator" if member_id in operators else "member"}
            send("POST", "/v1/members", body, f"member/{member_id}")
        for circle_id, _name, _parent, leads in CIRCLES:
            send("PUT", f"/v1/circles/{circle_id}/leads", {"leads": leads}, f"leads/{circle_id}")
        for member_id, hours in sorted(demo.capacities.items()):
            send("PUT", f"/v1/members/{member_id}/capacity", {"weekly_hours": hours}, f"capacity/{member_id}")
        until = anchor + timedelta(days=demo.pause_days)
        send("PUT", f"/v1/members/{PAUSED_MEMBER}/availability", {"status": PAUSED, "paused_until": until.isoformat()},
             f"availability/{PAUSED_MEMBER}")
        say(f"  directory done: {len(CIRCLES)} circles, {len(PEOPLE)} members; recording {len(demo.exchanges)} "
            "exchanges")

        # Newest first: recorded oldest first, every member would look silent for months until their
        # recent exchanges arrived, and the alert policy would mail leads about it while seeding.
        for n, x in reversed(list(enumerate(demo.exchanges))):
            key = f"exchange/{n}"
            body = {
                "giver": x.giver, "receiver": x.receiver, "kind": x.kind, "minutes": x.minutes, "note": x.note,
                "occurred_on": (anchor + timedelta(days=x.day)).isoformat(), "recorded_by": x.recorded_by,
                "shared": x.shared}
            exchange_id = send("POST", "/v1/exchanges", body, key)["id"]
            if x.outcome == ACKNOWLEDGED:
                send("POST", f"/v1/exchanges/{exchange_id}/acknowledge",
                     {"by": x.other_party, "thanks": x.thanks, "shared": x.ack_shared}, f"{key}/ack")
            elif x.outcome == DISPUTED:
                send("POST", f"/v1/exchanges/{exchange_id}/dispute", {"by": x.other_party, "reason": x.reason},
                     f"{key}/dispute")
            elif x.outcome == WITHDRAWN:
                send("POST", f"/v1/exchanges/{exchange_id}/withdraw", {"by": x.recorded_by}, f"{key}/withdraw")

    summary.circles, summary.members, summary.exchanges = len(CIRCLES), len(PEOPLE), len(demo.exchanges)
    for x in demo.exchanges:
        summary.by_status[x.outcome] = summary.by_status.get(x.outcome, 0) + 1
        summary.by_kind[x.kind] = summary.by_kind.get(x.kind, 0) + 1
        summary.shared += x.shared and x.ack_shared
    if web_database_url:
        summary.passwords = _set_passwords(web_database_url, password)
    names = dict((m, n) for m, n, _ in PEOPLE)
    summary.sign_in = [
        (MENTOR, f"{names[MENTOR]}: a member, the over-extended mentor"),
        (LEAD, f"{names[LEAD]}: lead of engineering and of the learning guild"),
        (OPERATOR, f"{names[OPERATOR]}: the operator"),
        (REGULAR, f"{names[REGULAR]}: a member with a balanced give and take"),
        ("henrik-larsen", "Henrik Larsen: lead of ops, where jonas-weber went quiet"),
    ]
    summary.seconds = time.monotonic() - began
    return summary


def _set_passwords(database_url: str, password: str) -> str:
    try:
        from reciprocity.web.accounts import set_password
    except ImportError:  # a deployment without the web: nobody signs in anyway
        return "not set (reciprocity.web.accounts is not installed)"
    for member_id, _, _ in PEOPLE:
        set_password(database_url, member_id, password)
    return f"set for all {len(PEOPLE)} members in {database_url}"


def print_summary(summary: SeedSummary, password: str | None) -> None:
    if summary.skipped:
        print(f"Nothing seeded: {summary.skipped} (--if-empty).")
        return
    print(f"Seeded Riverbend Co-op in {summary.seconds:.1f}s: {summary.circles} circles, {summary.members} members, "
          f"{summary.exchanges} exchanges over {DAYS} days up to {summary.anchor}.")
    print("  by status: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.by_status.items())))
    print("  by kind:   " + ", ".join(f"{k} {v}" for k, v in sorted(summary.by_kind.items())))
    print(f"  shared by both parties: {summary.shared}")
    print(f"  {summary.commands} commands, {summary.appended} appended now"
          + (" (the rest were already there)" if summary.appended < summary.commands else ""))
    print(f"  passwords: {summary.passwords}")
    print("Sign in as" + (f" (password {password!r}):" if password else ":"))
    for member_id, who in summary.sign_in:
        print(f"  {member_id:<16} {who}")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("seed", help="create a demo organisation through the ledger",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", action="store_true", required=True, help="the demo organisation (required)")
    parser.add_argument("--ledger-url", default=os.environ.get("LEDGER_URL", "http://127.0.0.1:8001"),
                        help="default: LEDGER_URL, else http://127.0.0.1:8001")
    credentials.add_token_argument(parser, "LEDGER_TOKEN")
    parser.add_argument("--if-empty", action="store_true", help="do nothing when the directory has members already")
    parser.add_argument("--web-database-url", default=None,
                        help="where demo sign-in passwords go; default: the web's DATABASE_URL, else "
                             "sqlite:///var/web.db")
    parser.add_argument("--no-passwords", action="store_true", help="do not set demo sign-in passwords")
    parser.add_argument("--password", default=DEMO_PASSWORD, help=f"the demo password (default {DEMO_PASSWORD!r})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    database_url = None
    if not args.no_passwords:
        database_url = args.web_database_url or _web_database_url()
    print(f"Seeding the demo organisation through {args.ledger_url} ...", file=sys.stderr)
    try:
        summary = seed_demo(args.ledger_url, credentials.token(args, "LEDGER_TOKEN"), if_empty=args.if_empty,
                            web_database_url=database_url, password=args.password,
                            progress=lambda line: print(line, file=sys.stderr))
    except ClientError as err:
        print(f"The ledger refused the seed: {err}", file=sys.stderr)
        return 1
    print_summary(summary, None if args.no_passwords else args.password)
    return 0


def _web_database_url() -> str | None:
    try:
        from reciprocity.web.settings import WebSettings
    except ImportError:
        return None
    return WebSettings().database_url
