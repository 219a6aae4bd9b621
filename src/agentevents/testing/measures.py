"""Numbers a scenario measures, written the way a product owner reads them.

``human(0.0082)`` is "8.2 ms", ``human(1.52)`` is "1.52 s"; ``spread`` summarises many waits as
median, 95th percentile and maximum. The figures go to ``figures.record_figure``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def human(seconds: float) -> str:
    """A duration for people: '8.2 ms', '275 ms', '1.52 s', '2 s', '65 s'."""
    ms = seconds * 1000
    if abs(ms) < 10:
        return f"{ms:.1f} ms"
    if abs(ms) < 1000:
        return f"{ms:.0f} ms"
    text = f"{seconds:.2f}" if abs(seconds) < 10 else f"{seconds:.1f}"
    return text.rstrip("0").rstrip(".") + " s"  # a limit of 2 seconds reads "2 s", not "2.00 s"


def percentile(values: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile: the smallest value at or above ``pct`` % of the values."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def spread(values_s: Sequence[float]) -> str:
    """'median 12 ms, p95 275 ms, max 310 ms' for a list of durations in seconds."""
    return (f"median {human(statistics.median(values_s))}, p95 {human(percentile(values_s, 95))}, "
            f"max {human(max(values_s))}")


def megabytes(nbytes: float) -> str:
    return f"{nbytes / 2**20:.1f} MB"
