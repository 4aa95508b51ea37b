"""The alert policy as pure decisions: thresholds, hysteresis, capacity, pause, disconnection."""

from datetime import date, timedelta

from reciprocity.balance.policy import (
    DEFAULT_POLICY,
    MemberActivity,
    Policy,
    decide,
    is_paused,
    policy_for,
)
from reciprocity.contracts.vocabulary import DISCONNECTED, OVEREXTENDED

TODAY = date(2026, 3, 1)


def facts(given_28: int = 0, received_28: int = 0, given_7: int = 0, weekly_hours: float | None = None,
          paused: bool = False, last: date | None = TODAY, registered: date | None = date(2025, 1, 1),
          back: date | None = None) -> MemberActivity:
    return MemberActivity("ann", given_28, received_28, given_7, weekly_hours, paused, last, registered, back)


def kinds(transitions) -> list[tuple[str, bool]]:  # type: ignore[no-untyped-def]
    return [(t.kind, t.raise_) for t in transitions]


def test_overextension_by_ratio_needs_volume_and_ratio() -> None:
    assert kinds(decide(facts(240, 80), DEFAULT_POLICY, {}, TODAY)) == [(OVEREXTENDED, True)]  # exactly 3x
    assert decide(facts(239, 0), DEFAULT_POLICY, {}, TODAY) == []  # under 240 minutes
    assert decide(facts(300, 101), DEFAULT_POLICY, {}, TODAY) == []  # under 3x
    raised = decide(facts(300, 0, 60), DEFAULT_POLICY, {}, TODAY)[0]
    assert raised.details["reason"] == "ratio" and raised.details["ratio"] is None
    assert raised.window_start == TODAY - timedelta(days=27) and raised.window_end == TODAY


def test_overextension_by_capacity() -> None:
    raised = decide(facts(200, 200, 121, weekly_hours=2), DEFAULT_POLICY, {}, TODAY)
    assert kinds(raised) == [(OVEREXTENDED, True)] and raised[0].details["reason"] == "capacity"
    assert raised[0].details["weekly_capacity_minutes"] == 120
    assert decide(facts(200, 200, 120, weekly_hours=2), DEFAULT_POLICY, {}, TODAY) == []  # at capacity is fine
    both = decide(facts(600, 0, 300, weekly_hours=1), DEFAULT_POLICY, {}, TODAY)[0]
    assert both.details["reason"] == "ratio_and_capacity"


def test_hysteresis_clears_below_two_not_below_three() -> None:
    active = {OVEREXTENDED: True}
    # ratio 2.5: no longer over 3, but not under 2 yet -> stays raised, nothing happens
    assert decide(facts(300, 120), DEFAULT_POLICY, active, TODAY) == []
    # ratio 1.9 -> cleared
    assert kinds(decide(facts(300, 158), DEFAULT_POLICY, active, TODAY)) == [(OVEREXTENDED, False)]
    # ratio fine but still over capacity -> stays
    assert decide(facts(300, 300, 200, weekly_hours=3), DEFAULT_POLICY, active, TODAY) == []
    # capacity respected again as well -> cleared
    assert kinds(decide(facts(300, 300, 180, weekly_hours=3), DEFAULT_POLICY, active, TODAY)) == [(OVEREXTENDED, False)]
    # the giving itself fell well below the threshold (240 * 2/3 = 160): cleared even with nothing received
    assert decide(facts(170, 0), DEFAULT_POLICY, active, TODAY) == []
    assert kinds(decide(facts(150, 0), DEFAULT_POLICY, active, TODAY)) == [(OVEREXTENDED, False)]


def test_paused_members_raise_nothing_and_a_pause_clears() -> None:
    assert decide(facts(1000, 0, 900, weekly_hours=1, paused=True, last=None), DEFAULT_POLICY, {}, TODAY) == []
    cleared = decide(facts(1000, 0, paused=True, last=TODAY - timedelta(days=40)), DEFAULT_POLICY,
                     {OVEREXTENDED: True, DISCONNECTED: True}, TODAY)
    assert kinds(cleared) == [(OVEREXTENDED, False), (DISCONNECTED, False)]
    assert is_paused("paused", None, TODAY) and is_paused("paused", TODAY, TODAY)
    assert not is_paused("paused", TODAY - timedelta(days=1), TODAY) and not is_paused("active", None, TODAY)


def test_disconnection_after_21_days_in_either_direction() -> None:
    assert decide(facts(last=TODAY - timedelta(days=20)), DEFAULT_POLICY, {}, TODAY) == []
    raised = decide(facts(last=TODAY - timedelta(days=21)), DEFAULT_POLICY, {}, TODAY)
    assert kinds(raised) == [(DISCONNECTED, True)]
    assert raised[0].window_start == TODAY - timedelta(days=20)  # the first silent day: the episode's identity
    assert raised[0].details["days_without_exchange"] == 21
    # never exchanged: counted from registration
    assert kinds(decide(facts(last=None, registered=TODAY - timedelta(days=21)), DEFAULT_POLICY, {}, TODAY)) == [
        (DISCONNECTED, True)
    ]
    assert decide(facts(last=None, registered=TODAY - timedelta(days=3)), DEFAULT_POLICY, {}, TODAY) == []
    # an exchange clears it
    assert kinds(decide(facts(last=TODAY), DEFAULT_POLICY, {DISCONNECTED: True}, TODAY)) == [(DISCONNECTED, False)]
    # still silent while active: nothing new
    assert decide(facts(last=TODAY - timedelta(days=30)), DEFAULT_POLICY, {DISCONNECTED: True}, TODAY) == []


def test_the_days_of_a_pause_are_not_silence() -> None:
    long_ago = TODAY - timedelta(days=90)
    back = TODAY - timedelta(days=5)  # paused for months, available again five days ago
    assert decide(facts(last=long_ago, back=back), DEFAULT_POLICY, {}, TODAY) == []
    assert decide(facts(last=None, registered=long_ago, back=back), DEFAULT_POLICY, {}, TODAY) == []
    later = back + timedelta(days=21)
    raised = decide(facts(last=long_ago, back=back), DEFAULT_POLICY, {}, later)
    assert kinds(raised) == [(DISCONNECTED, True)] and raised[0].window_start == back
    # An exchange after the pause counts as usual; a return older than the last exchange changes nothing.
    assert decide(facts(last=TODAY - timedelta(days=2), back=back), DEFAULT_POLICY, {}, later) == []
    assert kinds(decide(facts(last=TODAY - timedelta(days=21), back=long_ago), DEFAULT_POLICY, {}, TODAY)) == [
        (DISCONNECTED, True)
    ]


def test_strictest_policy_across_circles() -> None:
    mixed = policy_for([None, {"overextension_min_given_minutes": 120, "disconnection_days": 30},
                        {"overextension_ratio": 2.5, "overextension_clear_ratio": 2.8, "disconnection_days": 14}])
    assert mixed == Policy(overextension_min_given_minutes=120, overextension_ratio=2.5,
                           overextension_clear_ratio=2.0, disconnection_days=14)
    assert policy_for([]) == DEFAULT_POLICY
    # clear ratio never above the raise ratio, or an episode could not clear
    assert policy_for([{"overextension_ratio": 1.5}]).overextension_clear_ratio == 1.5
