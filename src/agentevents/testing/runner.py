"""``agentevents spec``: the plan's execution strategy for the behave specification.

Scenarios that may share the stack run in N behave processes at once (features dealt out by
their scenario counts); scenarios that must run alone — tagged @serial, @fault (they break a
component) or @load (they would distort everyone's timings) — run afterwards, one process, alone.
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


@dataclass
class Shard:
    index: int
    features: list[Path] = field(default_factory=list)
    weight: int = 0


def scenario_counts(features_dir: Path) -> dict[Path, int]:
    counts = {}
    for path in sorted(features_dir.glob("*.feature")):
        counts[path] = len(re.findall(r"^\s*Scenario(?: Outline)?:", path.read_text(), flags=re.M))
    return counts


def deal(counts: dict[Path, int], workers: int) -> list[Shard]:
    """Largest feature first, each to the lightest shard (greedy balancing)."""
    shards = [Shard(i) for i in range(max(1, workers))]
    for path, count in sorted(counts.items(), key=lambda kv: -kv[1]):
        lightest = min(shards, key=lambda s: s.weight)
        lightest.features.append(path)
        lightest.weight += count
    return [s for s in shards if s.features]


def tag_expression(user_tags: list[str], exclusive: bool) -> list[str]:
    """behave --tags options: the user's, plus the split between shared and exclusive scenarios."""
    split = " or ".join(EXCLUSIVE_TAGS)
    args = [f"--tags={t}" for t in user_tags]
    args.append(f"--tags={split}" if exclusive else f"--tags=not ({split})")
    return args


def behave_command(name: str, features: list[Path], tags: list[str], stack: str, extra: list[str]) -> list[str]:
    """One behave process. Scenarios left out by the shard's tag split are not reported (they are
    reported by the process that runs them); scenarios skipped at run time would be."""
    junit = REPORTS / "junit-parts" / name
    return [sys.executable, "-m", "behave", "-D", f"stack={stack}", "--junit", f"--junit-directory={junit}",
            "--no-skipped",
            "-f", "progress", "-o", "-", "-f", "html-pretty", "-o", str(REPORTS / f"specification-{name}.html"),
            *tags, *extra, *map(str, features)]


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


def run_spec(tags: list[str] | None = None, workers: int = 2, stack: str = "native",
             extra: list[str] | None = None, features_dir: str = "features") -> int:
    tags = tags or []
    extra = [a for a in (extra or []) if a != "--"]
    REPORTS.mkdir(exist_ok=True)
    shutil.rmtree(REPORTS / "junit-parts", ignore_errors=True)
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
        counts = scenario_counts(Path(features_dir))
        shards = deal(counts, workers)
        procs = []
        for shard in shards:
            cmd = behave_command(f"shard-{shard.index}", shard.features, tag_expression(tags, False), stack, extra)
            procs.append(launch(f"shard-{shard.index}", cmd))
        failed = any(p.wait() != 0 for p in procs)
        shared_s = time.monotonic() - started
        cmd = behave_command("exclusive", sorted(counts), tag_expression(tags, True), stack, extra)
        failed = launch("exclusive", cmd).wait() != 0 or failed
        files = gather_junit()
        print(f"spec: {len(shards)} shards in {shared_s:.1f}s, then exclusive scenarios; total "
              f"{time.monotonic() - started:.1f}s; {files} JUnit files in {REPORTS / 'junit'}; logs in {REPORTS}/*.log")
        for log in sorted(REPORTS.glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()
            summary = [line for line in lines if " passed, " in line or line.startswith("Failing scenarios")]
            print(f"  {log.stem}: {'; '.join(summary)}")
            if any(" failed" in line and not line.endswith(" 0 failed, 0 skipped") for line in summary):
                print("\n".join(f"    {line}" for line in lines[-60:]))
    finally:
        if target is not None:
            target.stop()
    return 1 if failed else 0
