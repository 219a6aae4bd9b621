"""The side-by-side benchmark's statistics: nearest-rank percentiles, summaries, CDF points."""

import math

import pytest
from sidebyside import stats


def test_nearest_rank_percentiles():
    values = list(range(1, 101))  # 1..100
    assert stats.percentile(values, 0.5) == 50
    assert stats.percentile(values, 0.99) == 99
    assert stats.percentile(values, 1.0) == 100
    assert stats.percentile(values, 0.0) == 1
    assert stats.percentile([7.0], 0.99) == 7.0


def test_percentile_does_not_need_sorted_input_and_rejects_bad_quantiles():
    assert stats.percentile([5, 1, 4, 2, 3], 0.5) == 3
    assert math.isnan(stats.percentile([], 0.5))
    with pytest.raises(ValueError):
        stats.percentile([1], 1.5)


def test_p99_of_a_small_sample_is_its_maximum():
    assert stats.percentile([1, 2, 3, 10], 0.99) == 10


def test_summarize():
    summary = stats.summarize([4.0, 1.0, 3.0, 2.0])
    assert summary["count"] == 4
    assert summary["mean"] == 2.5
    assert summary["p50"] == 2.0
    assert summary["p99"] == 4.0
    assert summary["p999"] == 4.0
    assert summary["max"] == 4.0
    empty = stats.summarize([])
    assert empty["count"] == 0 and math.isnan(empty["p50"]) and math.isnan(empty["max"])


def test_quantile_names():
    assert [stats.quantile_name(q) for q in stats.QUANTILES] == ["p50", "p90", "p99", "p999"]


def test_cdf_is_monotone_bounded_and_ends_at_the_maximum():
    values = [float(i % 997) for i in range(20_000)] + [5000.0]
    points = stats.cdf(values, points=200)
    assert len(points) <= 202
    assert points[-1] == (5000.0, 1.0)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    assert xs == sorted(xs) and ys == sorted(ys)
    assert all(0 < y <= 1 for y in ys)
    assert sum(1 for y in ys if y > 0.99) >= 40  # the tail is drawn in detail


def test_cdf_of_a_small_sample_has_every_point():
    assert stats.cdf([3.0, 1.0, 2.0]) == [(1.0, 1 / 3), (2.0, 2 / 3), (3.0, 1.0)]
    assert stats.cdf([]) == []
