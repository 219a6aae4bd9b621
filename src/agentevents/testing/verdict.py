"""The verdict of a specification run: what passed, what failed, what was not checked, and
whether the run itself can be trusted.

Pure logic (no I/O): the runner collects what each behave process left behind — its exit code,
how many JUnit files it wrote, its scenario records — and this module decides. A run fails when
any scenario failed, when a process crashed, was killed or exited non-zero with nothing to show
for it, when a process wrote no JUnit, or when a selected scenario never reported (its process
ended before it). A plan test's result follows the report's rule (``report.plan_outcome``).
A selection of no scenario at all is a usage error. Skips are counted apart: they are never
passes and never failures.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .records import FAILED, NOT_CHECKED

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


@dataclass(frozen=True)
class ProcessOutcome:
    """One behave process after the run."""

    name: str
    returncode: int | None  # None: it never ended (the runner gave up on it)
    junit_files: int
    locations: tuple[str, ...]  # the scenarios it was given
    junit_failures: int = 0  # failed + errored test cases in its JUnit


@dataclass
class Verdict:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)
    results: dict[str, str] = field(default_factory=dict)  # plan test -> passed/failed/skipped
    exit_code: int = EXIT_OK

    @property
    def line(self) -> str:
        """The closing line CI reads."""
        text = f"spec: {self.passed} passed, {self.failed} failed"
        return f"{text}, {self.skipped} skipped" if self.skipped else text


def _describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "did not finish"
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with {returncode}"


def plan_results(records: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Each plan test's result over its records (an outline's rows share one plan test), by the
    report's rule: failed if any row failed, passed if every row passed, skipped otherwise."""
    from .report import FAILS, HOLDS, plan_outcome
    rows: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        key = record.get("plan") or record.get("location") or record.get("name", "?")
        rows.setdefault(key, []).append(record)
    words = {HOLDS: "passed", FAILS: "failed"}
    return {key: words.get(plan_outcome(members), "skipped") for key, members in rows.items()}


def judge(processes: list[ProcessOutcome], records: list[dict[str, Any]], *, expected: int,
          allow_empty: bool = False) -> Verdict:
    """The run's verdict. ``expected`` is the number of scenarios (outline rows count one each)
    the selection held before anything ran."""
    verdict = Verdict()
    if expected == 0:
        if not allow_empty:
            verdict.problems.append("no scenario matches the selection (use --allow-empty if that is intended)")
            verdict.exit_code = EXIT_USAGE
        return verdict
    reported = {r.get("location") for r in records}
    missing: list[str] = []
    for proc in processes:
        mine = [r for r in records if r.get("process") == proc.name]
        failed_here = any(r.get("status") in FAILED for r in mine)
        if proc.returncode is None or proc.returncode < 0:
            verdict.problems.append(f"{proc.name} {_describe_exit(proc.returncode)}")
        elif proc.returncode != 0 and not failed_here:
            verdict.problems.append(f"{proc.name} {_describe_exit(proc.returncode)} although none of its "
                                    "scenarios failed (see its log)")
        all_skipped = bool(mine) and all(r.get("status") in NOT_CHECKED for r in mine)
        if proc.junit_files == 0 and not all_skipped:  # behave writes none for a shard it skipped whole
            verdict.problems.append(f"{proc.name} wrote no JUnit report")
        if proc.junit_failures and not failed_here:
            verdict.problems.append(f"{proc.name}'s JUnit has {proc.junit_failures} failed test case(s) "
                                    "that its records do not show")
        missing += [loc for loc in proc.locations if loc not in reported]
    silent = [r.get("plan") or r.get("location", "?") for r in records
              if r.get("status") in NOT_CHECKED and not r.get("skip_reason")]
    if silent:  # a skip without a reason reads as a pass to a busy reader
        verdict.problems.append(f"{len(silent)} scenario(s) skipped without a reason: " + ", ".join(silent[:5]))
    if missing:
        verdict.problems.append(f"{len(missing)} selected scenario(s) never reported: " + ", ".join(missing[:5])
                                + (" …" if len(missing) > 5 else ""))
    verdict.results = plan_results(records)
    values = list(verdict.results.values())
    verdict.passed = values.count("passed")
    verdict.failed = values.count("failed") + len(missing)
    verdict.skipped = values.count("skipped")
    if verdict.failed or verdict.problems:
        verdict.exit_code = EXIT_FAILED
    return verdict
