"""Circle and member measures (SPEC "Read models and measures"): pure functions of plain numbers.

All from settled exchanges unless named pending. Empty inputs give 0.0 rather than null, so a client
can tell "private" (null) from "nothing happened yet" (0.0).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Set
from typing import Any

PRIVACY_MIN_MEMBERS = 5


def reciprocity_index(given: int, received: int) -> float:
    """min/max of minutes given and received: 1 is balance, 0 a one-way flow, 1 when both are 0."""
    high = max(given, received)
    if high == 0:
        return 1.0
    return min(given, received) / high


def participation_rate(active_members: Iterable[str], exchanged: Iterable[str]) -> float:
    """Active members who gave or received at least once, over active members."""
    active = set(active_members)
    if not active:
        return 0.0
    return len(active & set(exchanged)) / len(active)


def mutual_ties(directed_pairs: Iterable[tuple[str, str]]) -> float:
    """Of the unordered pairs that exchanged, the fraction that exchanged in both directions."""
    return mutual_ties_rate(*tie_counts(directed_pairs))


def tie_counts(directed_pairs: Iterable[tuple[str, str]]) -> tuple[int, int]:
    """(ties, mutual ties): the unordered pairs that exchanged, and those of them that did so both ways."""
    directed = {(g, r) for g, r in directed_pairs if g != r}
    both_ways = sum(1 for g, r in directed if (r, g) in directed)  # each mutual tie counted from both ends
    return len(directed) - both_ways // 2, both_ways // 2


def ties_among(gave_to: Mapping[str, Set[str]]) -> tuple[dict[str, set[str]], int]:
    """From who gave to whom (each giver with the people they gave to, not themselves): each person with
    everyone they exchanged with either way, and how many of those pairs exchanged both ways. One pass
    over the pairs, with no object per pair: a busy circle has a thousand of them."""
    tied = {person: set(others) for person, others in gave_to.items()}
    nobody: frozenset[str] = frozenset()
    both_ways = 0  # each mutual pair counted from both ends
    for giver, others in gave_to.items():
        for other in others:
            if other in tied:
                tied[other].add(giver)
            else:
                tied[other] = {giver}
            if giver in gave_to.get(other, nobody):
                both_ways += 1
    return tied, both_ways // 2


def mutual_ties_rate(ties: int, mutual: int) -> float:
    return mutual / ties if ties else 0.0


def gini(values: Sequence[float]) -> float:
    """Gini coefficient: 0 when everyone has the same, (n-1)/n when one has everything.

    Mean absolute difference over twice the mean, computed in O(n log n) on the sorted values:
    G = sum_i (2i - n - 1) x_i / (n sum x), i = 1..n ascending. Zero for an empty or all-zero input.
    """
    xs = sorted(float(v) for v in values)
    n = len(xs)
    total = sum(xs)
    if n == 0 or total == 0:
        return 0.0
    weighted = sum((2 * i - n - 1) * x for i, x in enumerate(xs, start=1))
    return weighted / (n * total)


def cross_circle_breadth(inside_count: int, crossing_count: int) -> float:
    """Fraction of the circle's exchanges whose other party is outside the circle."""
    total = inside_count + crossing_count
    return crossing_count / total if total else 0.0


def feedback_cycles(feedback_count: int, member_count: int, window_days: int) -> float:
    """Feedback exchanges per member per 30 days."""
    if member_count == 0 or window_days <= 0:
        return 0.0
    return feedback_count / member_count * 30 / window_days


def is_private(member_count: int) -> bool:
    return member_count < PRIVACY_MIN_MEMBERS


def circle_health(
    *,
    members: Sequence[str],
    active_members: Sequence[str],
    given_by_member: Mapping[str, int],
    exchanged_members: Iterable[str],
    tie_count: int,
    mutual_tie_count: int,
    inside_count: int,
    crossing_count: int,
    mentoring_minutes: int,
    mentoring_count: int,
    feedback_count: int,
    window_days: int,
) -> dict[str, Any]:
    """The measures of one circle over a window; all null when the circle is private.

    Plain numbers in, so that what grows with history (the pairs who exchanged) is counted by the
    database, and what is computed here is bounded by the circle's membership."""
    if is_private(len(members)):
        return {
            "member_count": len(members), "private": True, "participation_rate": None, "mutual_ties": None,
            "gini": None, "cross_circle_breadth": None, "mentoring_minutes": None, "mentoring_count": None,
            "feedback_cycles": None,
        }  # fmt: skip
    return {
        "member_count": len(members),
        "private": False,
        "participation_rate": round(participation_rate(active_members, exchanged_members), 4),
        "mutual_ties": round(mutual_ties_rate(tie_count, mutual_tie_count), 4),
        # Members who gave nothing count as zeros: that is what concentration is about.
        "gini": round(gini([given_by_member.get(m, 0) for m in members]), 4),
        "cross_circle_breadth": round(cross_circle_breadth(inside_count, crossing_count), 4),
        "mentoring_minutes": mentoring_minutes,
        "mentoring_count": mentoring_count,
        "feedback_cycles": round(feedback_cycles(feedback_count, len(members), window_days), 4),
    }
