"""The one delivery check of the side-by-side benchmark: loss, order, duplicates, counts."""

import pytest
from sidebyside.checker import DeliveryChecker


def feed(checker, stream, seqs, sent=100.0, received=100.002):
    for seq in seqs:
        checker.record(stream, seq, sent, received, 250)


def test_every_event_in_order_is_ok():
    checker = DeliveryChecker(["a", "b"])
    checker.begin()
    feed(checker, "a", [1, 2, 3])
    feed(checker, "b", [1, 2])
    result = checker.end(5)
    assert result["ok"] and result["delivered"] == 5 and result["lost"] == 0
    assert result["bytes_per_event"] == 250
    assert checker.window.latencies_ms == pytest.approx([2.0] * 5, abs=1e-6)


def test_a_missing_event_is_a_gap_and_a_loss():
    checker = DeliveryChecker(["a"])
    checker.begin()
    feed(checker, "a", [1, 2, 4])
    result = checker.end(4)
    assert not result["ok"]
    assert result["gaps"] == 1 and result["lost"] == 1 and result["delivered"] == 3
    assert checker.outstanding() == 1


def test_a_late_event_is_delivered_but_out_of_order():
    checker = DeliveryChecker(["a"])
    checker.begin()
    feed(checker, "a", [1, 3, 2, 4])
    result = checker.end(4)
    assert result["delivered"] == 4 and result["lost"] == 0
    assert result["reordered"] == 1 and not result["ok"]
    assert checker.outstanding() == 0


def test_a_duplicate_is_not_counted_as_delivered():
    checker = DeliveryChecker(["a"])
    checker.begin()
    feed(checker, "a", [1, 2, 2, 3, 1])
    result = checker.end(3)
    assert result["duplicates"] == 2 and result["delivered"] == 3 and not result["ok"]


def test_lost_tail_shows_only_against_the_published_count():
    checker = DeliveryChecker(["a"])
    checker.begin()
    feed(checker, "a", [1, 2])
    assert checker.end(2)["ok"]
    assert checker.end(5)["lost"] == 3


def test_more_deliveries_than_published_is_flagged():
    checker = DeliveryChecker(["a"])
    checker.begin()
    feed(checker, "a", [1, 2, 3])
    result = checker.end(2)
    assert result["surplus"] == 1 and result["lost"] == 0 and not result["ok"]


def test_events_of_streams_nobody_follows_are_unknown():
    checker = DeliveryChecker(["a"])
    checker.begin()
    feed(checker, "zzz", [1])
    result = checker.end(0)
    assert result["unknown"] == 1 and not result["ok"]


def test_windows_keep_each_streams_position():
    checker = DeliveryChecker(["a"])
    checker.begin()
    feed(checker, "a", [1, 2, 3])
    checker.begin()
    feed(checker, "a", [4, 5])
    result = checker.end(2)
    assert result["ok"] and result["delivered"] == 2


def test_a_stream_may_start_past_one():
    checker = DeliveryChecker()
    checker.add("thread", first=7)
    checker.begin()
    feed(checker, "thread", [7, 8])
    assert checker.end(2)["ok"]


def test_first_and_last_receive_times():
    checker = DeliveryChecker(["a"])
    checker.begin()
    checker.record("a", 1, 10.0, 10.5)
    checker.record("a", 2, 10.0, 11.5)
    assert (checker.window.first_at, checker.window.last_at) == (10.5, 11.5)
