"""The record formatter, run by a real behave on a small feature made here (no stack): one JSON
line per scenario with its plan id, business value, result, skip reason, figures and steps."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

FEATURE = """\
Feature: Tiny
  In order to check the records
  As a maintainer
  I want one line per scenario

  @T001
  Scenario: A promise that holds
    It matters because it is measured.

    Given a figure of 8.2 ms is measured
    Then all is well

  @T002
  Scenario: A promise that is broken
    Given a figure of 1.5 ms is measured
    Then it fails with "expected 3 events"

  @T003 @needs_fault_control
  Scenario: A promise this backend cannot show
    Then all is well

  @T004
  Scenario Outline: The same behaviour for <n>
    Then all is well

    Examples:
      | n   |
      | one |
      | two |
"""

STEPS = """\
from behave import given, then
from agentevents.testing.figures import record_figure

@given("a figure of {value} ms is measured")
def step_figure(context, value):
    record_figure(context, f"agent_started {value} ms after the request — limit 500 ms")

@then("all is well")
def step_ok(context):
    pass

@then('it fails with "{text}"')
def step_fail(context, text):
    raise AssertionError(text)
"""

ENVIRONMENT = """\
def before_scenario(context, scenario):
    if "needs_fault_control" in scenario.effective_tags:
        scenario.skip("needs fault_control: kills a gateway mid-run")
"""


def run_behave(tmp_path: Path) -> tuple[int, list[dict]]:
    features = tmp_path / "features"
    (features / "steps").mkdir(parents=True)
    (features / "tiny.feature").write_text(FEATURE)
    (features / "steps" / "steps.py").write_text(STEPS)
    (features / "environment.py").write_text(textwrap.dedent(ENVIRONMENT))
    out = tmp_path / "records.jsonl"
    proc = subprocess.run([sys.executable, "-m", "behave", "--no-junit", "-D", "process=shard-9", "-D", "report_html=",
                           "-f", "agentevents.testing.records:RecordFormatter", "-o", str(out), str(features)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    return proc.returncode, [json.loads(line) for line in out.read_text().splitlines()]


def test_one_record_per_scenario_with_result_value_reason_and_figures(tmp_path):
    rc, records = run_behave(tmp_path)
    assert rc == 1  # one scenario failed
    by_name = {r["name"]: r for r in records}
    assert len(records) == 5
    held = by_name["A promise that holds"]
    assert held["plan"] == "T001" and held["status"] == "passed" and held["process"] == "shard-9"
    assert held["description"] == ["It matters because it is measured."]
    assert held["figures"] == ["agent_started 8.2 ms after the request — limit 500 ms"]
    assert held["feature"]["description"] == ["In order to check the records", "As a maintainer",
                                              "I want one line per scenario"]
    assert [s["status"] for s in held["steps"]] == ["passed", "passed"]
    broken = by_name["A promise that is broken"]
    assert broken["status"] == "failed" and "expected 3 events" in broken["error"]
    assert broken["figures"] == ["agent_started 1.5 ms after the request — limit 500 ms"]
    skipped = by_name["A promise this backend cannot show"]
    assert skipped["status"] == "skipped"
    assert skipped["skip_reason"] == "needs fault_control: kills a gateway mid-run"
    rows = [r for r in records if r["plan"] == "T004"]
    assert len(rows) == 2 and {r["outline"] for r in rows} == {"The same behaviour for <n>"}
    assert len({r["location"] for r in rows}) == 2
    assert sorted(r["example"]["n"] for r in rows) == ["one", "two"]
