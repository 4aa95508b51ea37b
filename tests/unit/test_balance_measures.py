"""Measures of the balance service, checked against hand-computed examples."""

import pytest
from reciprocity.balance import measures


def test_reciprocity_index_edge_cases() -> None:
    assert measures.reciprocity_index(0, 0) == 1.0  # nothing either way is balance
    assert measures.reciprocity_index(120, 0) == 0.0  # one-way flow
    assert measures.reciprocity_index(0, 45) == 0.0
    assert measures.reciprocity_index(60, 60) == 1.0
    assert measures.reciprocity_index(30, 120) == 0.25  # symmetric: min/max
    assert measures.reciprocity_index(120, 30) == 0.25


def test_gini_of_known_distributions() -> None:
    assert measures.gini([]) == 0.0
    assert measures.gini([0, 0, 0]) == 0.0
    assert measures.gini([5, 5, 5, 5]) == 0.0
    # One of four gives everything: (n-1)/n.
    assert measures.gini([0, 0, 0, 100]) == pytest.approx(0.75)
    # 1,2,3,4: sum of |xi-xj| over all ordered pairs = 20; 20 / (2 * 16 * 2.5) = 0.25.
    assert measures.gini([4, 1, 3, 2]) == pytest.approx(0.25)
    # Members who gave nothing are part of the distribution: [0, 60] -> 0.5, not 0.
    assert measures.gini([0, 60]) == pytest.approx(0.5)


def test_participation_counts_only_active_members() -> None:
    assert measures.participation_rate(["a", "b", "c", "d"], ["a", "c", "zz"]) == 0.5
    assert measures.participation_rate([], ["a"]) == 0.0


def test_mutual_ties() -> None:
    pairs = [("a", "b"), ("b", "a"), ("a", "c"), ("d", "c")]
    # ties: {a,b} mutual, {a,c} one-way, {c,d} one-way -> 1/3
    assert measures.mutual_ties(pairs) == pytest.approx(1 / 3)
    assert measures.mutual_ties([]) == 0.0
    assert measures.tie_counts(pairs) == (3, 1)
    assert measures.tie_counts([("a", "a")]) == (0, 0)  # giving to oneself is no tie


def test_ties_among_agree_with_the_directed_pairs() -> None:
    import random

    rng = random.Random(3)
    people = [f"p{i}" for i in range(12)]
    for _ in range(50):
        pairs = {(g, r) for g, r in (rng.sample(people, 2) for _ in range(rng.randint(0, 60)))}
        gave_to: dict[str, set[str]] = {}
        for g, r in pairs:
            gave_to.setdefault(g, set()).add(r)
        tied, mutual = measures.ties_among(gave_to)
        ties = {frozenset(p) for p in pairs}
        assert (sum(len(o) for o in tied.values()) // 2, mutual) == measures.tie_counts(pairs)
        assert {frozenset((a, b)) for a, others in tied.items() for b in others} == ties


def test_cross_circle_breadth_and_feedback_cycles() -> None:
    assert measures.cross_circle_breadth(3, 1) == 0.25
    assert measures.cross_circle_breadth(0, 0) == 0.0
    # 6 feedback exchanges among 5 members over 60 days: 6/5 * 30/60 = 0.6 per member per 30 days.
    assert measures.feedback_cycles(6, 5, 60) == pytest.approx(0.6)


def _health(members: list[str]) -> dict:
    return measures.circle_health(
        members=members, active_members=members, given_by_member={"a": 60}, exchanged_members={"a", "b"},
        tie_count=1, mutual_tie_count=1, inside_count=2, crossing_count=2, mentoring_minutes=60,
        mentoring_count=1, feedback_count=1, window_days=30,
    )


def test_privacy_threshold_hides_small_circles() -> None:
    small = _health(["a", "b", "c", "d"])
    assert small["private"] is True and small["member_count"] == 4
    for key in ("participation_rate", "mutual_ties", "gini", "cross_circle_breadth", "mentoring_minutes",
                "mentoring_count", "feedback_cycles"):
        assert small[key] is None
    assert "flows" not in small and "ties" not in small  # the picture is for queries to add, and never here

    five = _health(["a", "b", "c", "d", "e"])
    assert five["private"] is False
    assert five["participation_rate"] == 0.4
    assert five["mutual_ties"] == 1.0
    assert five["gini"] == pytest.approx(0.8)  # [60, 0, 0, 0, 0]
    assert five["cross_circle_breadth"] == 0.5
    assert five["feedback_cycles"] == pytest.approx(0.2)
