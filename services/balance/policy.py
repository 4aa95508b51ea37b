"""The alert policy (SPEC "Alert policy"): pure decisions from a member's numbers and current state.

Counts are settled, plus pending ones their giver recorded (never disputed or withdrawn): a giver whose
help goes unacknowledged is still giving, but an exchange recorded by its receiver counts only once the
giver acknowledged it, so nobody can raise an alert about someone else (gathered in `signals.py`).

- over-extension: in the last 28 days given >= min_given (240) and given >= ratio (3) x received; or in
  the last 7 days given > declared weekly capacity. Cleared (hysteresis) when the ratio part no longer
  holds with the gentler clear ratio (given < clear_ratio x received, or the volume fell below
  min_given x clear_ratio / ratio) AND the capacity is respected again.
- disconnection: an active (not paused) member with no exchange in either direction for 21 days.
- paused members raise nothing; an active episode of a member who pauses is cleared, with the reason
  "paused", which notify never mails (pausing is never reported).

A member in several circles gets the strictest policy: each threshold is the most sensitive one among
their circles' overrides (lowest minimum, lowest ratios, fewest days). Leads of every circle get alerts,
so the strictest circle's care wins rather than the most lenient one's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from reciprocity.contracts.vocabulary import DISCONNECTED, OVEREXTENDED, PAUSED

OVEREXTENSION_WINDOW_DAYS = 28
CAPACITY_WINDOW_DAYS = 7


@dataclass(frozen=True)
class Policy:
    overextension_min_given_minutes: int = 240
    overextension_ratio: float = 3.0
    overextension_clear_ratio: float = 2.0
    disconnection_days: int = 21

    def with_overrides(self, overrides: Mapping[str, Any] | None) -> Policy:
        if not overrides:
            return self
        known = {k: v for k, v in overrides.items() if v is not None and hasattr(self, k)}
        return replace(self, **known)


DEFAULT_POLICY = Policy()


def strictest(policies: Iterable[Policy], default: Policy = DEFAULT_POLICY) -> Policy:
    """The most sensitive thresholds among `policies` (the default when there are none)."""
    chosen = list(policies)
    if not chosen:
        return default
    ratio = min(p.overextension_ratio for p in chosen)
    return Policy(
        overextension_min_given_minutes=min(p.overextension_min_given_minutes for p in chosen),
        overextension_ratio=ratio,
        # The clear ratio must stay at or below the raise ratio, or an episode could never clear.
        overextension_clear_ratio=min(min(p.overextension_clear_ratio for p in chosen), ratio),
        disconnection_days=min(p.disconnection_days for p in chosen),
    )


def policy_for(circle_overrides: Iterable[Mapping[str, Any] | None], default: Policy = DEFAULT_POLICY) -> Policy:
    """The policy of a member in circles with these overrides (None: the circle uses the defaults)."""
    return strictest((default.with_overrides(o) for o in circle_overrides), default)


@dataclass(frozen=True)
class MemberActivity:
    member_id: str
    given_28: int  # minutes given in the last 28 days (settled + pending)
    received_28: int
    given_7: int  # minutes given in the last 7 days
    weekly_hours: float | None  # declared capacity, None when not declared
    paused: bool
    last_exchange_on: date | None  # latest day with an exchange in either direction
    registered_on: date | None
    available_since: date | None = None  # first day available again after the latest pause


@dataclass(frozen=True)
class Transition:
    kind: str  # OVEREXTENDED | DISCONNECTED
    raise_: bool  # True: start an episode; False: clear the active one
    window_start: date  # raise: the episode's window start (part of its deterministic id)
    window_end: date
    details: dict[str, Any]


def is_paused(status: str, paused_until: date | None, today: date) -> bool:
    """Paused until the given day (inclusive); a pause without an end lasts until resumed."""
    return status == PAUSED and (paused_until is None or paused_until >= today)


def _ratio(given: int, received: int) -> float | None:
    return round(given / received, 2) if received else None


def overextension(facts: MemberActivity, policy: Policy, active: bool, today: date) -> Transition | None:
    capacity_min = None if facts.weekly_hours is None else round(facts.weekly_hours * 60)
    over_capacity = capacity_min is not None and facts.given_7 > capacity_min
    if active:
        if facts.paused:
            return _clear_over(facts, today, capacity_min, "paused")
        clear_volume = (policy.overextension_min_given_minutes * policy.overextension_clear_ratio
                        / policy.overextension_ratio)
        ratio_cleared = (facts.given_28 < policy.overextension_clear_ratio * facts.received_28
                         or facts.given_28 < clear_volume)
        if ratio_cleared and not over_capacity:
            return _clear_over(facts, today, capacity_min, "rebalanced")
        return None
    if facts.paused:
        return None
    over_ratio = (facts.given_28 >= policy.overextension_min_given_minutes
                  and facts.given_28 >= policy.overextension_ratio * facts.received_28)
    if not (over_ratio or over_capacity):
        return None
    reason = "ratio_and_capacity" if over_ratio and over_capacity else ("ratio" if over_ratio else "capacity")
    return Transition(
        kind=OVEREXTENDED,
        raise_=True,
        window_start=today - timedelta(days=OVEREXTENSION_WINDOW_DAYS - 1),
        window_end=today,
        details={
            "reason": reason,
            "given_minutes": facts.given_28,
            "received_minutes": facts.received_28,
            "ratio": _ratio(facts.given_28, facts.received_28),
            "given_last_7_days": facts.given_7,
            "weekly_capacity_minutes": capacity_min,
        },
    )


def _clear_over(facts: MemberActivity, today: date, capacity_min: int | None, why: str) -> Transition:
    return Transition(
        kind=OVEREXTENDED, raise_=False, window_start=today, window_end=today,
        details={"why": why, "given_minutes": facts.given_28, "received_minutes": facts.received_28,
                 "ratio": _ratio(facts.given_28, facts.received_28), "given_last_7_days": facts.given_7,
                 "weekly_capacity_minutes": capacity_min},
    )  # fmt: skip


def disconnection(facts: MemberActivity, policy: Policy, active: bool, today: date) -> Transition | None:
    # Whole days without an exchange: last exchange on D and today D+21 make 21 days; a member who never
    # exchanged counts from registration. The episode starts the first silent day (its identity).
    if facts.last_exchange_on is not None:
        silent_since: date | None = facts.last_exchange_on + timedelta(days=1)
        days: int | None = (today - facts.last_exchange_on).days
    elif facts.registered_on is not None:
        silent_since, days = facts.registered_on, (today - facts.registered_on).days
    else:
        silent_since, days = None, None
    back = facts.available_since
    if back is not None and back <= today and (silent_since is None or back > silent_since):
        # Back from a pause: a pause is opting out without stigma, so its days are not silence.
        silent_since, days = back, (today - back).days
    disconnected = days is not None and days >= policy.disconnection_days
    details = {"last_exchange_on": facts.last_exchange_on.isoformat() if facts.last_exchange_on else None,
               "days_without_exchange": days}
    if active:
        if facts.paused or not disconnected:
            details["why"] = "paused" if facts.paused else "exchanged"
            return Transition(kind=DISCONNECTED, raise_=False, window_start=today, window_end=today, details=details)
        return None
    if facts.paused or not disconnected:
        return None
    assert silent_since is not None
    return Transition(kind=DISCONNECTED, raise_=True, window_start=silent_since, window_end=today, details=details)


def decide(facts: MemberActivity, policy: Policy, active: Mapping[str, bool], today: date) -> list[Transition]:
    """Every transition `facts` call for, given which kinds currently have an active episode."""
    found = [
        overextension(facts, policy, active.get(OVEREXTENDED, False), today),
        disconnection(facts, policy, active.get(DISCONNECTED, False), today),
    ]
    return [t for t in found if t is not None]
