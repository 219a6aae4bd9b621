"""A synthetic specification run for the browser tests: 120 plan tests over eight features, written
as real ``.feature`` files, with the records a run of them could have produced (failures, errors,
skips with reasons, outlines, measured figures) and the report rendered from those records.

``.venv/bin/python tests/browser/synthetic_run.py DIR`` writes it all under DIR, to look at."""

from __future__ import annotations

import pathlib
import sys
from dataclasses import dataclass
from typing import Any

from agentevents.testing.report import render_report

FEATURES = [
    ("agent_started", "The agent starts: the user sees at once that work on her request has begun",
     ["In order to know that my request was taken up", "As a user of an AI chat product",
      "I want the agent's start announced quickly, to me and to nobody else"]),
    ("agent_thinking", "The agent thinks aloud: the user follows its reasoning as it happens",
     ["In order to trust the answer", "As a user of an AI chat product",
      "I want to see the agent's thoughts in order"]),
    ("tool_executing", "A tool starts: the user sees which tool works for her",
     ["In order to understand what takes time", "As a user", "I want each tool call announced"]),
    ("tool_completed", "A tool finishes: the user sees what it found",
     ["In order to check the agent's sources", "As a user", "I want each tool's result shown"]),
    ("agent_completed", "The agent completes: the user gets the final answer once",
     ["In order to rely on the answer", "As a user", "I want exactly one completion"]),
    ("delivery", "Delivery: every event arrives once, in order, even across reconnects",
     ["In order to never miss or repeat a step", "As a user on a flaky network", "I want replay after reconnect"]),
    ("resilience", "Resilience: a gateway or worker may die, the conversation goes on",
     ["In order to keep working during incidents", "As an operator", "I want failures to stay invisible to users"]),
    ("security", "Security: nobody sees another person's events",
     ["In order to keep conversations private", "As a user", "I want my events delivered to me alone"]),
]
PER_FEATURE = 15
FAILED = {"T007": "failed", "T033": "error"}
OUTLINE_FAILED = "T050"
OUTLINE_PASSED = "T060"
OUTLINE_MIXED = "T110"
SKIPPED = {
    "T090": "needs fault_control: kills a gateway mid-run",
    "T091": "needs fault_control: restarts Redis",
    "T092": "needs netem: adds 200 ms latency",
    "T093": "needs netem: drops 5% of packets",
    "T094": "needs fault_control: kills a worker mid-run",
}
UNTESTED = "T100"
SCRIPT_TITLE = 'A title with <script>alert("boom")</script> in it stays text'
OUTLINE_TITLE = "The <event> notice arrives in order"
PROBLEMS = ["shard-1 exited with 1 and wrote no JUnit"]
META = {"target": "native stack", "started": "2026-11-01 10:00:00 UTC", "duration": "4 min 12 s",
        "command": "agentevents spec --workers 3"}


@dataclass
class Synthetic:
    features_dir: pathlib.Path
    records: list[dict[str, Any]]
    report: pathlib.Path

    def plan_records(self, plan: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["plan"] == plan]


def _title(plan: str, n: int) -> str:
    if plan == "T015":
        return SCRIPT_TITLE
    return f"Promise {plan}: the user sees event {n} within {100 + 10 * n} ms of the one before"


def _steps(plan: str, status: str, error: str | None) -> list[dict[str, Any]]:
    last = "passed" if status == "passed" else ("skipped" if status in ("skipped", "untested") else status)
    return [
        {"keyword": "Given", "name": f"Alice is connected for {plan}", "status": "skipped" if last == "skipped"
         else "passed", "duration_s": 0.012, "location": "features/steps/sessions.py:12", "error": None},
        {"keyword": "Then", "name": f"Alice receives what {plan} promises", "status": last, "duration_s": 0.4,
         "location": "features/steps/events.py:88", "error": error},
    ]


def _record(feature: tuple[str, str, list[str]], plan: str, line: int, *, name: str, outline: str | None = None,
            status: str = "passed", figures: list[str] | None = None, skip_reason: str | None = None,
            error: str | None = None) -> dict[str, Any]:
    stem, title, narrative = feature
    return {
        "process": f"shard-{int(plan[1:]) % 3}",
        "feature": {"name": title, "file": f"features/{stem}.feature", "description": narrative},
        "name": name,
        "plan": plan,
        "outline": outline,
        "tags": [plan, "timing"] if figures else [plan],
        "location": f"features/{stem}.feature:{line}",
        "description": [f"Business value of {plan}: people resend or leave when this is late.",
                        "The figure is kept with the results, so a slow drift shows early."],
        "status": status,
        "skip_reason": skip_reason,
        "duration_s": 0.42,
        "figures": figures or [],
        "error": error,
        "steps": _steps(plan, status, error),
    }


def _error(plan: str) -> str:
    return (f"AssertionError: {plan}: expected agent_started within 500 ms, got it after 1730 ms\n"
            f'  File "features/steps/events.py", line 88, in step_receives_{plan.lower()}\n'
            "    assert_that(elapsed, less_than(limit))")


def build(root: pathlib.Path) -> Synthetic:
    """Write the feature files under ``root/features``, make the records, render ``root/specification.html``."""
    features_dir = root / "features"
    features_dir.mkdir(parents=True)
    records: list[dict[str, Any]] = []
    for index, feature in enumerate(FEATURES):
        stem, title, narrative = feature
        lines = [f"Feature: {title}", *(f"  {n}" for n in narrative), ""]
        for n in range(index * PER_FEATURE + 1, (index + 1) * PER_FEATURE + 1):
            plan = f"T{n:03d}"
            lines += [f"  @{plan}"]
            line = len(lines) + 1
            if plan in (OUTLINE_FAILED, OUTLINE_PASSED, OUTLINE_MIXED):
                events = ["agent_started", "agent_thinking", "agent_completed"][: 2 if plan == OUTLINE_MIXED else 3]
                lines += [f"  Scenario Outline: {OUTLINE_TITLE} ({plan})", "    Given Alice is connected",
                          "    Then Alice receives <event>", "", "    Examples: events", "      | event |",
                          *(f"      | {e} |" for e in events), ""]
                for row, event in enumerate(events, start=1):
                    status, reason, error, figures = "passed", None, None, [f"{plan} {event} after {8 + row}.2 ms"]
                    if plan == OUTLINE_FAILED and row == 2:
                        status, error, figures = "failed", _error(plan), []
                    if plan == OUTLINE_MIXED and row == 2:
                        status, reason, figures = "skipped", "needs netem: reorders packets", []
                    records.append(_record(
                        feature, plan, line + 5 + row,
                        name=f"The {event} notice arrives in order ({plan}) -- @1.{row} events",
                        outline=f"{OUTLINE_TITLE} ({plan})", status=status, figures=figures,
                        skip_reason=reason, error=error))
                continue
            name = _title(plan, n)
            lines += [f"  Scenario: {name}", "    Given Alice is connected", "    Then Alice is happy", ""]
            status = FAILED.get(plan, "passed")
            reason = SKIPPED.get(plan)
            if reason:
                status = "skipped"
            if plan == UNTESTED:
                status = "untested"
            measured = n % 3 == 0 and status not in ("skipped", "untested")
            figures = [f"{plan}: agent_started {n}.2 ms after the request — limit 500 ms"] if measured else []
            error = _error(plan) if plan in FAILED else None
            records.append(_record(feature, plan, line, name=name, status=status, figures=figures,
                                   skip_reason=reason, error=error))
        (features_dir / f"{stem}.feature").write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = render_report(records, root / "specification.html", problems=PROBLEMS, meta=META)
    return Synthetic(features_dir, records, report)


if __name__ == "__main__":
    print(build(pathlib.Path(sys.argv[1])).report)
