"""``agentevents spec``: the plan's execution strategy for the behave specification.

Scenarios that may share the stack run in N behave processes at once (scenarios dealt out one
by one, the long @slow ones first, each to the least loaded shard); scenarios that must run
alone — tagged @serial, @fault (they break a component) or @load (they would distort everyone's
timings) — run afterwards, one process, alone.
Each process writes its own JUnit directory; the runner gathers them into ``reports/junit`` with
unique file names, so CI sees one set of test cases, each named once.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

EXCLUSIVE_TAGS = ("@serial", "@fault", "@load")
REPORTS = Path("reports")


# Rough cost of a scenario, for balancing: a @slow one is worth many ordinary ones.
SLOW_WEIGHT = 30


@dataclass(frozen=True)
class Scenario:
    location: str  # "features/x.feature:12", what behave runs
    tags: frozenset[str]

    @property
    def exclusive(self) -> bool:
        return any(t.lstrip("@") in self.tags for t in EXCLUSIVE_TAGS)

    @property
    def weight(self) -> int:
        return SLOW_WEIGHT if "slow" in self.tags else 1


@dataclass
class Shard:
    index: int
    scenarios: list[Scenario] = field(default_factory=list)
    weight: int = 0


def scenarios_in(features_dir: Path) -> list[Scenario]:
    from behave.parser import parse_file
    found = []
    for path in sorted(features_dir.glob("*.feature")):
        for scenario in parse_file(str(path)).walk_scenarios():
            found.append(Scenario(f"{path}:{scenario.line}", frozenset(str(t) for t in scenario.effective_tags)))
    return found


def selected(scenario: Scenario, tags: list[str]) -> bool:
    """The user's --tags (each must hold) and behave.ini's default (no @wip)."""
    from behave.tag_expression import make_tag_expression
    expressions = tags or ["not @wip"]
    return all(make_tag_expression(t).check(scenario.tags) for t in expressions)


def deal(scenarios: list[Scenario], workers: int) -> list[Shard]:
    """Heaviest first, each to the lightest shard (greedy balancing)."""
    shards = [Shard(i) for i in range(max(1, workers))]
    for scenario in sorted(scenarios, key=lambda s: -s.weight):
        lightest = min(shards, key=lambda s: s.weight)
        lightest.scenarios.append(scenario)
        lightest.weight += scenario.weight
    return [s for s in shards if s.scenarios]


def behave_command(name: str, locations: list[str], tags: list[str], stack: str, extra: list[str]) -> list[str]:
    """One behave process. Scenarios left out by the shard's tag split are not reported (they are
    reported by the process that runs them); scenarios skipped at run time would be."""
    junit = REPORTS / "junit-parts" / name
    return [sys.executable, "-m", "behave", "-D", f"stack={stack}", "--junit", f"--junit-directory={junit}",
            "--no-skipped",
            "-f", "progress", "-o", "-", "-f", "html-pretty", "-o", str(REPORTS / f"specification-{name}.html"),
            *[f"--tags={t}" for t in tags], *extra, *locations]


def launch(name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
    """Start one behave process; its console output goes to reports/<name>.log."""
    log = open(REPORTS / f"{name}.log", "wb")  # noqa: SIM115 (closed by the child's exit)
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def gather_junit() -> int:
    """Copy every part into reports/junit with unique names; return the number of files."""
    target = REPORTS / "junit"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    count = 0
    for part in sorted((REPORTS / "junit-parts").glob("*")):
        for xml in sorted(part.glob("*.xml")):
            shutil.copy(xml, target / f"{xml.stem}.{part.name}.xml")
            count += 1
    return count


def junit_totals() -> tuple[int, int]:
    """Scenarios passed and not passed, over the gathered JUnit files."""
    import xml.etree.ElementTree as ET
    passed = failed = 0
    for xml in (REPORTS / "junit").glob("*.xml"):
        for case in ET.parse(xml).getroot().iter("testcase"):
            if case.get("status") == "passed":
                passed += 1
            else:
                failed += 1
    return passed, failed


def run_spec(tags: list[str] | None = None, workers: int = 2, stack: str = "native",
             extra: list[str] | None = None, features_dir: str = "features") -> int:
    tags = tags or []
    extra = [a for a in (extra or []) if a != "--"]
    REPORTS.mkdir(exist_ok=True)
    shutil.rmtree(REPORTS / "junit-parts", ignore_errors=True)
    for stale in [*REPORTS.glob("*.log"), *REPORTS.glob("specification-*.html")]:
        stale.unlink()
    target = None
    if stack == "native":
        from .world import StackTarget
        target = StackTarget.from_userdata({"stack": "native"})
        target.start()
    started = time.monotonic()
    failed = False
    try:
        if stack != "native":
            # Another backend: one process, nothing split, so @fault scenarios are reported as
            # skipped with their reason rather than left out.
            cmd = [sys.executable, "-m", "behave", "-D", f"stack={stack}", *[f"--tags={t}" for t in tags], *extra]
            return subprocess.call(cmd)
        everything = [s for s in scenarios_in(Path(features_dir)) if selected(s, tags)]
        shards = deal([s for s in everything if not s.exclusive], workers)
        procs = []
        for shard in shards:
            cmd = behave_command(f"shard-{shard.index}", [s.location for s in shard.scenarios], tags, stack, extra)
            procs.append(launch(f"shard-{shard.index}", cmd))
        failed = any(p.wait() != 0 for p in procs)
        shared_s = time.monotonic() - started
        alone = [s.location for s in everything if s.exclusive]
        if alone:
            failed = launch("exclusive", behave_command("exclusive", alone, tags, stack, extra)).wait() != 0 or failed
        files = gather_junit()
        print(f"spec: {len(shards)} shards in {shared_s:.1f}s, then exclusive scenarios; total "
              f"{time.monotonic() - started:.1f}s; {files} JUnit files in {REPORTS / 'junit'}; logs in {REPORTS}/*.log")
        for log in sorted(REPORTS.glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()
            summary = [line for line in lines if " passed, " in line or line.startswith("Failing scenarios")]
            print(f"  {log.stem}: {'; '.join(summary)}")
            if any(re.search(r"\b[1-9]\d* (failed|error)", line) for line in summary):
                print("\n".join(f"    {line}" for line in lines[-60:]))
        passed, failed = junit_totals()
        print(f"spec: {passed} passed, {failed} failed")
    finally:
        if target is not None:
            target.stop()
    return 1 if failed else 0
