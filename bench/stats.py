"""Percentiles as every part of `make bench` reports them."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile: the smallest value with at least `p`% of the values at or below it
    (the 99th of 100 answers for p99: one slow answer in a hundred does not make the p99, two do)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = math.ceil(round(p / 100 * len(ordered), 9))  # round: 0.29 * 100 is 28.999999999999996
    return ordered[min(len(ordered), max(1, rank)) - 1]
