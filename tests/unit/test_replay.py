from agentevents.protocol.replay import ReplayPlan, assemble, contiguous, next_deliverable


def test_replay_returns_exactly_the_missed_events_in_order():
    plan = ReplayPlan(since=3, head=6)
    stream = [(5, "e5"), (6, "e6"), (4, "e4")]
    result = assemble(plan, stream)
    assert result.complete
    assert result.events == [(4, "e4"), (5, "e5"), (6, "e6")]


def test_archive_fills_what_the_stream_no_longer_has():
    plan = ReplayPlan(since=0, head=5)
    assert plan.archive_range(first_in_stream=4) == range(1, 4)
    result = assemble(plan, [(4, "s4"), (5, "s5")], [(1, "a1"), (2, "a2"), (3, "a3")])
    assert [s for s, _ in result.events] == [1, 2, 3, 4, 5]
    assert result.events[3] == (4, "s4")


def test_a_hole_makes_the_replay_incomplete_and_empty():
    result = assemble(ReplayPlan(since=0, head=4), [(1, "a"), (2, "b"), (4, "d")])
    assert not result.complete
    assert result.events == []
    assert result.missing == [3]


def test_duplicates_and_out_of_range_entries_are_ignored():
    result = assemble(ReplayPlan(since=1, head=3), [(1, "old"), (2, "x"), (2, "x-again"), (3, "y"), (9, "z")])
    assert result.events == [(2, "x"), (3, "y")]


def test_nothing_missed_is_a_complete_empty_replay():
    result = assemble(ReplayPlan(since=5, head=5))
    assert result.complete and result.events == []
    assert ReplayPlan(since=7, head=5).wanted == range(8, 6)


def test_live_delivery_rule():
    assert next_deliverable(4, 5) == "deliver"
    assert next_deliverable(4, 4) == "duplicate"
    assert next_deliverable(4, 2) == "duplicate"
    assert next_deliverable(4, 7) == "gap"
    assert contiguous([3, 4, 5], 3) and not contiguous([3, 5], 3)
