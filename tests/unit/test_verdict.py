"""The specification run's verdict: a crashed or killed process, a missing JUnit report, a
scenario that never reported, an empty selection, failures and skips."""

from __future__ import annotations

import signal

from agentevents.testing.verdict import EXIT_FAILED, EXIT_OK, EXIT_USAGE, ProcessOutcome, judge, plan_results


def record(plan: str, status: str, process: str = "shard-0", location: str | None = None) -> dict:
    reason = "needs fault_control" if status in ("skipped", "untested") else None
    return {"plan": plan, "status": status, "process": process, "location": location or f"f.feature:{plan[1:]}",
            "skip_reason": reason}


def proc(name: str = "shard-0", returncode: int | None = 0, junit: int = 1, locations: tuple[str, ...] = (),
         junit_failures: int = 0) -> ProcessOutcome:
    return ProcessOutcome(name, returncode, junit, locations, junit_failures)


def test_all_passed_is_a_pass():
    records = [record("T001", "passed"), record("T002", "passed")]
    verdict = judge([proc(locations=("f.feature:001", "f.feature:002"))], records, expected=2)
    assert (verdict.passed, verdict.failed, verdict.skipped, verdict.exit_code) == (2, 0, 0, EXIT_OK)
    assert verdict.problems == []
    assert verdict.line == "spec: 2 passed, 0 failed"


def test_a_failed_scenario_fails_the_run():
    records = [record("T001", "passed"), record("T002", "failed")]
    verdict = judge([proc(returncode=1)], records, expected=2)
    assert (verdict.passed, verdict.failed, verdict.exit_code) == (1, 1, EXIT_FAILED)
    assert verdict.problems == []  # behave's exit 1 is explained by the failure


def test_an_error_counts_as_a_failure():
    verdict = judge([proc(returncode=1)], [record("T001", "error")], expected=1)
    assert (verdict.failed, verdict.exit_code) == (1, EXIT_FAILED)


def test_a_crashed_shard_fails_the_run_even_when_its_records_passed():
    records = [record("T001", "passed"), record("T002", "passed", process="shard-1")]
    verdict = judge([proc(), proc("shard-1", returncode=3)], records, expected=2)
    assert verdict.exit_code == EXIT_FAILED
    assert any("shard-1 exited with 3" in p for p in verdict.problems), verdict.problems


def test_a_killed_shard_fails_the_run_and_says_by_what():
    verdict = judge([proc(returncode=-signal.SIGKILL)], [record("T001", "passed")], expected=1)
    assert verdict.exit_code == EXIT_FAILED
    assert verdict.problems == ["shard-0 was killed by SIGKILL"]


def test_a_process_that_never_finished_fails_the_run():
    verdict = judge([proc(returncode=None)], [record("T001", "passed")], expected=1)
    assert verdict.exit_code == EXIT_FAILED
    assert verdict.problems == ["shard-0 did not finish"]


def test_missing_junit_fails_the_run():
    verdict = judge([proc(junit=0)], [record("T001", "passed")], expected=1)
    assert verdict.exit_code == EXIT_FAILED
    assert verdict.problems == ["shard-0 wrote no JUnit report"]


def test_a_process_whose_scenarios_were_all_skipped_needs_no_junit():
    verdict = judge([proc(junit=0)], [record("T001", "skipped"), record("T002", "skipped")], expected=2)
    assert (verdict.exit_code, verdict.problems, verdict.skipped) == (EXIT_OK, [], 2)
    nothing = judge([proc(junit=0, locations=("f.feature:001",))], [], expected=1)
    assert "shard-0 wrote no JUnit report" in nothing.problems


def test_junit_failures_the_records_do_not_show_fail_the_run():
    verdict = judge([proc(junit_failures=1)], [record("T001", "passed")], expected=1)
    assert verdict.exit_code == EXIT_FAILED
    assert "JUnit has 1 failed" in verdict.problems[0]


def test_a_scenario_that_never_reported_counts_as_failed():
    verdict = judge([proc(locations=("f.feature:001", "f.feature:002"))], [record("T001", "passed")], expected=2)
    assert (verdict.passed, verdict.failed, verdict.exit_code) == (1, 1, EXIT_FAILED)
    assert "f.feature:002" in verdict.problems[0]


def test_zero_selected_is_a_usage_error_unless_allowed():
    verdict = judge([], [], expected=0)
    assert verdict.exit_code == EXIT_USAGE
    assert "no scenario matches" in verdict.problems[0]
    allowed = judge([], [], expected=0, allow_empty=True)
    assert (allowed.exit_code, allowed.problems, allowed.line) == (EXIT_OK, [], "spec: 0 passed, 0 failed")


def test_skips_are_counted_apart_and_are_not_passes():
    records = [record("T001", "passed"), record("T002", "skipped"), record("T003", "untested")]
    verdict = judge([proc()], records, expected=3)
    assert (verdict.passed, verdict.failed, verdict.skipped, verdict.exit_code) == (1, 0, 2, EXIT_OK)
    assert verdict.line == "spec: 1 passed, 0 failed, 2 skipped"


def test_a_skip_without_a_reason_fails_the_run():
    silent = {**record("T002", "skipped"), "skip_reason": None}
    verdict = judge([proc()], [record("T001", "passed"), silent], expected=2)
    assert verdict.exit_code == EXIT_FAILED
    assert verdict.problems == ["1 scenario(s) skipped without a reason: T002"]


def test_an_outline_is_one_plan_test_failed_by_any_row():
    rows = [record("T007", "passed", location="f:10"), record("T007", "failed", location="f:11"),
            record("T007", "passed", location="f:12")]
    assert plan_results(rows) == {"T007": "failed"}
    assert plan_results(rows[::2]) == {"T007": "passed"}
    assert plan_results([rows[0], record("T007", "skipped", location="f:13")]) == {"T007": "skipped"}
