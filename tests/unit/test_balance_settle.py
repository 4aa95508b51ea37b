"""Members touched by events are judged once the stream settles, or after a bounded wait."""

from datetime import date

from reciprocity.balance.signals import SignalEngine


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def engine(clock: Clock) -> SignalEngine:
    return SignalEngine(clock=lambda: date(2026, 11, 22), settle_s=2.0, max_defer_s=30.0, monotonic=clock)


def test_touched_members_wait_until_the_stream_is_quiet() -> None:
    clock = Clock()
    signals = engine(clock)
    assert signals.after_batch(None, 1, {"ann"}) == 0  # type: ignore[arg-type]  # nothing evaluated yet
    clock.t += 1.0
    signals.after_batch(None, 1, {"bob"})  # type: ignore[arg-type]
    clock.t += 1.5
    assert signals.take_settled() == set()  # the last batch was 1.5 s ago
    clock.t += 0.5
    assert signals.take_settled() == {"ann", "bob"}
    assert signals.take_settled() == set()  # taken once


def test_a_steady_stream_defers_judgement_only_so_long() -> None:
    clock = Clock()
    signals = engine(clock)
    for _ in range(40):  # a batch every second for 40 s: never quiet for 2 s
        signals.after_batch(None, 1, {"ann"})  # type: ignore[arg-type]
        clock.t += 1.0
        if due := signals.take_settled():
            break
    assert due == {"ann"} and 30.0 <= clock.t - 100.0 <= 31.0


def test_members_whose_evaluation_failed_are_due_again_at_once() -> None:
    clock = Clock()
    signals = engine(clock)
    signals.give_back({"ann"})
    assert signals.take_settled() == {"ann"}


def test_without_settling_the_batch_is_judged_at_once() -> None:
    evaluated: list[set[str]] = []
    signals = SignalEngine(clock=lambda: date(2026, 11, 22))
    signals.evaluate = lambda conn, gen, members: evaluated.append(set(members)) or 0  # type: ignore[method-assign]
    signals.after_batch(None, 1, {"ann"})  # type: ignore[arg-type]
    assert evaluated == [{"ann"}]
