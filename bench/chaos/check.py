"""The verdict of a chaos run, as pure functions: what the ledger answered vs what the read side shows.

No I/O here: the harness snapshots the ledger's answers, balance's read model, the signals and the
mail sink's messages, and these functions say what was lost, what was applied twice, which expected
alerts arrived and which emails came twice outside notify's one documented duplicate window (a crash
after the SMTP server took a message and before notify recorded it as sent).

Outcomes, as a client sees them after its retries:
- `acknowledged`: 201, the command appended its events; it must be in the read model exactly once.
- `unchanged`: 200, nothing to append (e.g. the same capacity again).
- `refused`: 4xx; nothing may have been appended, so it must not be in the read model at all.
- `unknown`: no definitive answer before the client gave up (timeouts, 503s): it may be there, once.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ACKNOWLEDGED, UNCHANGED, REFUSED, UNKNOWN = "acknowledged", "unchanged", "refused", "unknown"
RECORD = "record"
# A transition out of `recorded` and the status it leaves the exchange in.
TRANSITIONS = {"acknowledge": "acknowledged", "dispute": "disputed", "withdraw": "withdrawn"}
DIRECTORY = "directory"

# A member's counters as balance serves them (summed from the exchange rows by its queries since
# migration 0009), and which of them an exchange row in a given status adds to.
COUNTERS = (
    "given_count", "given_minutes", "received_count", "received_minutes",
    "pending_given_count", "pending_given_minutes", "pending_received_count", "pending_received_minutes",
)  # fmt: skip
_COUNTED_AS = {"acknowledged": "", "recorded": "pending_"}


@dataclass(frozen=True)
class Sent:
    """One command as the client saw it. `seq` orders commands on one directory target (a client sends
    them one at a time, so this is the order the ledger saw them in)."""

    tag: str  # unique per command; also its Idempotency-Key, and in a recording's note
    action: str  # record | acknowledge | dispute | withdraw | directory
    outcome: str
    exchange_id: str | None = None
    # Directory commands: what they set, e.g. ("member", "alice", "weekly_hours") -> 12.0.
    target: tuple[str, ...] | None = None
    value: Any = None
    seq: int = 0


@dataclass(frozen=True)
class ExchangeRow:
    exchange_id: str
    tag: str | None  # the command tag found in the note, None if none
    giver: str
    receiver: str
    minutes: int
    status: str


@dataclass
class Verdict:
    acknowledged: int = 0
    lost: list[str] = field(default_factory=list)
    double_applied: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.lost and not self.double_applied


def expected_counters(rows: Iterable[ExchangeRow]) -> dict[str, Counter[str]]:
    """A member's counters over all time, as the exchange rows say they must be: acknowledged rows are
    settled, recorded ones pending, disputed and withdrawn ones count nowhere."""
    totals: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        prefix = _COUNTED_AS.get(row.status)
        if prefix is None:
            continue
        totals[row.giver][f"{prefix}given_count"] += 1
        totals[row.giver][f"{prefix}given_minutes"] += row.minutes
        totals[row.receiver][f"{prefix}received_count"] += 1
        totals[row.receiver][f"{prefix}received_minutes"] += row.minutes
    return totals


def check(
    sent: Sequence[Sent],
    rows: Sequence[ExchangeRow],
    counters: Mapping[str, Mapping[str, int]],
    directory: Mapping[tuple[str, ...], Any],
) -> Verdict:
    """Every acknowledged command in the read model exactly once; nothing refused in it at all; nothing
    timed out in it twice. `counters`: each member's numbers as balance's read queries sum them from its
    exchange rows (no member counters since 0009, no pair counters since 0008), which this recount in
    plain Python must match; `directory`: the read model's value for each directory target the commands
    name (absent: not there)."""
    verdict = Verdict(acknowledged=sum(1 for s in sent if s.outcome == ACKNOWLEDGED))
    _check_recordings(sent, rows, verdict)
    _check_transitions(sent, {r.exchange_id: r for r in rows}, verdict)
    _compare_counters(expected_counters(rows), counters, COUNTERS, verdict)
    _check_directory(sent, directory, verdict)
    return verdict


def _check_recordings(sent: Sequence[Sent], rows: Sequence[ExchangeRow], verdict: Verdict) -> None:
    by_tag = Counter(r.tag for r in rows if r.tag is not None)
    for s in sent:
        if s.action != RECORD:
            continue
        found = by_tag.get(s.tag, 0)
        if s.outcome == ACKNOWLEDGED and found == 0:
            verdict.lost.append(f"recording {s.tag} ({s.exchange_id}) answered 201 but is not in the read model")
        elif s.outcome == REFUSED and found:
            verdict.double_applied.append(f"recording {s.tag} was refused but is in the read model {found}x")
        elif found > 1:
            verdict.double_applied.append(f"recording {s.tag} ({s.outcome}) is in the read model {found}x")


def _check_transitions(sent: Sequence[Sent], rows: Mapping[str, ExchangeRow], verdict: Verdict) -> None:
    by_exchange: dict[str, list[Sent]] = defaultdict(list)
    for s in sent:
        if s.action in TRANSITIONS and s.exchange_id is not None:
            by_exchange[s.exchange_id].append(s)
    for exchange_id, commands in by_exchange.items():
        accepted = [s for s in commands if s.outcome == ACKNOWLEDGED]
        if len(accepted) > 1:
            # Each exchange leaves `recorded` once: a second 201 means the ledger accepted a transition
            # its own state should have refused (409).
            verdict.double_applied.append(
                f"exchange {exchange_id} left 'recorded' {len(accepted)}x: "
                + ", ".join(s.action for s in accepted) + " all answered 201")
        row = rows.get(exchange_id)
        status = row.status if row else None
        possible = {TRANSITIONS[s.action] for s in commands if s.outcome in (ACKNOWLEDGED, UNKNOWN)}
        for s in accepted:
            if status != TRANSITIONS[s.action] and len(accepted) == 1:
                verdict.lost.append(f"{s.action} {s.tag} of {exchange_id} answered 201 but the read model "
                                    f"says {status or 'no such exchange'}")
        for s in commands:
            if s.outcome == REFUSED and status == TRANSITIONS[s.action] and status not in possible:
                verdict.double_applied.append(f"{s.action} {s.tag} of {exchange_id} was refused but applied")


def _compare_counters(expected: Mapping[str, Mapping[str, int]], counters: Mapping[str, Mapping[str, int]],
                      names: Sequence[str], verdict: Verdict) -> None:
    """The sums must agree with the rows: an event applied twice to the sums (or never) shows here even
    when the row itself looks right. Each count off by one is one event lost or double-applied."""
    for who in sorted(set(expected) | set(counters)):
        want, have = expected.get(who, {}), counters.get(who, {})
        for name in names:
            diff = int(have.get(name, 0)) - int(want.get(name, 0))
            if diff == 0:
                continue
            what = f"{who} {name} is {have.get(name, 0)}, its exchanges say {want.get(name, 0)}"
            if name.endswith("count"):
                (verdict.double_applied if diff > 0 else verdict.lost).extend([what] * abs(diff))
                continue
            count = name.replace("minutes", "count")
            if int(have.get(count, 0)) == int(want.get(count, 0)):
                # Counts agree but minutes do not: one event applied with a wrong or repeated amount.
                (verdict.double_applied if diff > 0 else verdict.lost).append(what)


def _check_directory(sent: Sequence[Sent], directory: Mapping[tuple[str, ...], Any], verdict: Verdict) -> None:
    """The last acknowledged value of each target is what the read model holds, unless a later command
    on it timed out (then that one may have won)."""
    by_target: dict[tuple[str, ...], list[Sent]] = defaultdict(list)
    for s in sent:
        if s.target is not None and s.outcome != REFUSED:
            by_target[s.target].append(s)
    for target, commands in by_target.items():
        commands.sort(key=lambda s: s.seq)
        last = max((i for i, s in enumerate(commands) if s.outcome in (ACKNOWLEDGED, UNCHANGED)), default=None)
        if last is None:
            continue
        allowed = [commands[last].value] + [s.value for s in commands[last + 1:] if s.outcome == UNKNOWN]
        have = directory.get(target)
        if have not in allowed:
            verdict.lost.append(f"{'/'.join(target)} is {have!r} in the read model, the ledger acknowledged "
                                f"{commands[last].value!r} ({commands[last].tag})")


# --- alerts and emails ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mail:
    """One message the mail sink stored."""

    alert_id: str
    recipient: str  # the lead's member id (X-Reciprocity-Recipient)
    received_at: float  # epoch seconds


@dataclass
class AlertVerdict:
    expected: int = 0
    delivered: int = 0
    duplicates: int = 0
    missing: list[str] = field(default_factory=list)
    unexplained_duplicates: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unexplained_duplicates


def check_alerts(
    expected: Iterable[tuple[str, str]],
    alert_members: Mapping[str, tuple[str, str]],
    mails: Sequence[Mail],
    notify_kills: Sequence[float],
    send_window_s: float = 15.0,
    marked_sent: Iterable[tuple[str, str]] = (),
    not_sent: Iterable[str] = (),
) -> AlertVerdict:
    """`expected`: (member, lead) pairs that must have had an over-extension email; `alert_members`:
    alert id -> (member, kind) as balance raised them. A second copy of one alert to one lead is
    explained only by a notify kill shortly after the previous copy arrived (the send window); and a
    second alert of the same kind about one member to one lead is a duplicate too (raised twice).
    `marked_sent`: (alert id, recipient) of every delivery notify's log calls sent, each of which must be
    in the mailbox; `not_sent`: deliveries or alerts notify left pending, waiting or failed (missing)."""
    verdict = AlertVerdict()
    wanted = set(expected)
    verdict.expected = len(wanted)
    got = {(alert_members[m.alert_id][0], m.recipient) for m in mails
           if alert_members.get(m.alert_id, ("", ""))[1] == "overextended"}
    verdict.delivered = len(wanted & got)
    verdict.missing = [f"no over-extension email about {member} to {lead}" for member, lead in sorted(wanted - got)]
    mailed = {(m.alert_id, m.recipient) for m in mails}
    verdict.missing += [f"notify logged alert {alert_id} as sent to {recipient}; the mailbox has no such email"
                        for alert_id, recipient in sorted(set(marked_sent) - mailed)]
    verdict.missing += [f"notify never sent: {what}" for what in not_sent]

    copies: dict[tuple[str, str], list[float]] = defaultdict(list)
    for m in mails:
        copies[(m.alert_id, m.recipient)].append(m.received_at)
    for (alert_id, recipient), times in sorted(copies.items()):
        times.sort()
        for before, after in itertools.pairwise(times):
            verdict.duplicates += 1
            if not any(before - 1.0 <= k <= min(after, before + send_window_s) for k in notify_kills):
                verdict.unexplained_duplicates.append(
                    f"alert {alert_id} mailed to {recipient} again {after - before:.1f}s later, no notify kill "
                    "in between")
    per_subject: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for m in mails:
        member, kind = alert_members.get(m.alert_id, ("?", "?"))
        if kind in ("overextended", "disconnected"):
            per_subject[(member, kind, m.recipient)].add(m.alert_id)
    for (member, kind, recipient), alert_ids in sorted(per_subject.items()):
        if len(alert_ids) > 1:
            verdict.duplicates += len(alert_ids) - 1
            verdict.unexplained_duplicates.append(
                f"{recipient} was told {len(alert_ids)}x that {member} is {kind}: {sorted(alert_ids)}")
    return verdict


def last_line(kills: int, verdict: Verdict, alerts: AlertVerdict) -> str:
    return (f"chaos: {kills} kills, {verdict.acknowledged} acknowledged, {len(verdict.lost)} lost, "
            f"{len(verdict.double_applied)} double-applied, {alerts.expected} alerts expected, "
            f"{alerts.delivered} delivered, {alerts.duplicates} duplicate emails")
