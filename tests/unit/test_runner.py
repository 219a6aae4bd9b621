"""The spec runner's pure parts: tag expressions checked before anything starts, the selection,
shard balancing, progress lines and the record a formatter writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentevents.testing.records import plan_id, read_records
from agentevents.testing.runner import Scenario, SpecError, deal, progress_line, scenarios_in, selected, tag_filter

FEATURES = Path(__file__).resolve().parents[2] / "features"


def test_a_bad_tag_expression_is_one_clear_error():
    with pytest.raises(SpecError) as caught:
        tag_filter(["@T001 and"])
    assert "bad tag expression '@T001 and'" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_tags_select_and_default_leaves_out_wip():
    wip = Scenario("a:1", frozenset({"wip", "T001"}))
    plain = Scenario("a:2", frozenset({"T002", "slow"}))
    assert [s.location for s in (wip, plain) if selected(s, tag_filter([]))] == ["a:2"]
    assert [s.location for s in (wip, plain) if selected(s, tag_filter(["@T001"]))] == ["a:1"]
    assert [s.location for s in (wip, plain) if selected(s, tag_filter(["not @slow", "@T002"]))] == []


def test_every_plan_test_is_in_the_features_once():
    scenarios = scenarios_in(FEATURES)
    plans = {plan_id(sorted(s.tags)) for s in scenarios}
    assert plans == {f"T{n:03d}" for n in range(1, 121)}
    assert all(plan_id(sorted(s.tags)) for s in scenarios)


def test_a_missing_features_directory_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError):
        scenarios_in(tmp_path / "nowhere")


def test_deal_balances_slow_scenarios_and_keeps_every_one():
    scenarios = [Scenario(f"f:{i}", frozenset({"slow"} if i < 2 else set())) for i in range(10)]
    shards = deal(scenarios, 3)
    dealt = sorted(s.location for shard in shards for s in shard.scenarios)
    assert dealt == sorted(s.location for s in scenarios)
    slow_shards = [shard.index for shard in shards for s in shard.scenarios if "slow" in s.tags]
    assert len(set(slow_shards)) == 2  # the two slow ones go to different shards


def test_progress_line_shows_result_time_title_first_error_line_and_figures():
    line = progress_line({"plan": "T042", "status": "failed", "duration_s": 1.26, "name": "Tool parameters are visible",
                          "error": "\nAssertionError: expected 3 events\n  but: got 2", "figures": ["p95 12 ms"]})
    assert line.splitlines() == ["T042 failed    1.3 s  Tool parameters are visible",
                                 "      ! AssertionError: expected 3 events", "      measured: p95 12 ms"]
    skipped = progress_line({"plan": "T114", "status": "skipped", "duration_s": 0.027, "name": "x",
                             "skip_reason": "needs fault_control"})
    assert skipped.splitlines() == ["T114 skipped   27 ms  x", "      skipped: needs fault_control"]


def test_an_outline_row_is_shown_by_its_outline_and_example_values():
    line = progress_line({"plan": "T007", "status": "passed", "duration_s": 0.3, "name": "Refused -- @1.2 Passes",
                          "outline": "Refused at the door", "example": {"pass": "expired", "code": "401"}})
    assert line == "T007 passed   300 ms  Refused at the door — expired · 401"


def test_read_records_leaves_out_a_half_written_line(tmp_path):
    path = tmp_path / "shard-0.jsonl"
    path.write_text('{"plan": "T001", "status": "passed"}\n{"plan": "T002", "sta')
    assert read_records([path, tmp_path / "absent.jsonl"]) == [{"plan": "T001", "status": "passed"}]
