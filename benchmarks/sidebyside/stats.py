"""Percentiles and distributions of latency samples (milliseconds)."""

from __future__ import annotations

import math
from collections.abc import Sequence

QUANTILES = (0.5, 0.9, 0.99, 0.999)


def percentile(values: Sequence[float], q: float, *, presorted: bool = False) -> float:
    """Nearest-rank percentile: the smallest value with at least ``q`` of the sample at or below it.
    NaN for an empty sample."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q!r} is not within 0..1")
    if not values:
        return math.nan
    ordered = values if presorted else sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


def summarize(values: Sequence[float]) -> dict[str, float]:
    """count, mean, p50, p90, p99, p999 and max of a sample; NaN fields (count 0) when empty."""
    ordered = sorted(values)
    out: dict[str, float] = {"count": len(ordered)}
    out["mean"] = sum(ordered) / len(ordered) if ordered else math.nan
    for q in QUANTILES:
        out[quantile_name(q)] = percentile(ordered, q, presorted=True)
    out["max"] = float(ordered[-1]) if ordered else math.nan
    return out


def quantile_name(q: float) -> str:
    """0.5 -> 'p50', 0.99 -> 'p99', 0.999 -> 'p999'."""
    digits = f"{q * 100:.10g}".replace(".", "")
    return "p" + digits


def cdf(values: Sequence[float], points: int = 200) -> list[tuple[float, float]]:
    """At most ``points`` (value, fraction at or below it) pairs, for plotting: evenly spaced in rank,
    denser in the tail (the last 1% gets a quarter of the points), always ending at the maximum."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return []
    if n <= points:
        return [(float(v), (i + 1) / n) for i, v in enumerate(ordered)]
    body, tail = points * 3 // 4, points - points * 3 // 4
    ranks = {max(1, math.ceil(0.99 * n * (i + 1) / body)) for i in range(body)}
    start = math.ceil(0.99 * n)
    ranks |= {start + math.ceil((n - start) * (i + 1) / tail) for i in range(tail)}
    ranks.add(n)
    return [(float(ordered[min(r, n) - 1]), min(r, n) / n) for r in sorted(ranks)]
