"""The percentile every part of `make bench` reports (bench/stats.py)."""

import pytest

from bench.stats import percentile


def test_the_p99_of_a_hundred_answers_is_the_second_slowest() -> None:
    answers = [float(i) for i in range(1, 101)]
    assert percentile(answers, 99) == 99.0  # not the slowest (100): one slow answer in a hundred is not the p99
    assert percentile(answers, 50) == 50.0
    assert percentile(answers, 100) == 100.0
    assert percentile(answers, 0) == 1.0


@pytest.mark.parametrize("n", [1, 7, 100, 1000, 14250])
@pytest.mark.parametrize("p", [1, 29, 50, 90, 99, 99.9])
def test_nearest_rank(n: int, p: float) -> None:
    """At least p% of the values are at or below it, and fewer than p% below it; order does not matter."""
    values = [float((i * 7919) % n) for i in range(n)]  # a permutation of 0..n-1, shuffled
    found = percentile(values, p)
    share = round(p / 100 * n, 9)  # 0.999 * 1000 is not quite 999 in binary
    assert sum(v <= found for v in values) >= share
    assert sum(v < found for v in values) < share


def test_no_values_is_an_error() -> None:
    with pytest.raises(ValueError):
        percentile([], 99)
