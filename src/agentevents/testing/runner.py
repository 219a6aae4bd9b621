"""``agentevents spec``: the plan's execution strategy for the behave specification.

Scenarios that may share the stack run in N behave processes at once (dealt out one by one, the
long @slow ones first, each to the least loaded shard); scenarios that must run alone — tagged
@serial, @fault (they break a component) or @load (they would distort everyone's timings) — run
afterwards in one process, alone. Against another backend (``--stack external``/``docker``) one
process runs everything. The target profile (``--target``) says which backend and what it offers;
scenarios needing a capability it lacks are reported as skipped, with their reason.

Every process writes its JUnit into ``reports/junit-parts/NAME`` (gathered into
``reports/junit``), its console output into ``reports/NAME.log`` and one record per finished
scenario into ``reports/parts/NAME.jsonl``. While the run goes the runner prints a line per
finished scenario from those records; afterwards it writes ONE report of all processes
(``reports/specification.html``, with the merged records in ``reports/specification.json``) and
the verdict (``testing.verdict``): any failure, crash, missing JUnit or missing scenario fails it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .records import FAILED, NOT_CHECKED, read_records
from .verdict import EXIT_USAGE, ProcessOutcome, judge

EXCLUSIVE_TAGS = ("@serial", "@fault", "@load")
REPORTS = Path("reports")  # `agentevents spec --reports DIR` moves it
POLL_S = 0.5  # how often the console looks for finished scenarios

# Rough cost of a scenario, for balancing: a @slow one is worth many ordinary ones.
SLOW_WEIGHT = 30


class SpecError(Exception):
    """A mistake in how the run was asked for: one line, exit 2."""


@dataclass(frozen=True)
class Scenario:
    location: str  # "features/x.feature:12", what behave runs
    tags: frozenset[str]
    name: str = ""

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
    """Every scenario of the feature files (each row of a Scenario Outline is one)."""
    from behave.parser import ParserError, parse_file
    if not features_dir.is_dir():
        raise SpecError(f"no features directory at {features_dir}")
    found = []
    for path in sorted(features_dir.glob("*.feature")):
        try:
            feature = parse_file(str(path))
        except ParserError as exc:
            raise SpecError(f"{path}: {str(exc).splitlines()[0]}") from None
        for scenario in feature.walk_scenarios():
            found.append(Scenario(f"{path}:{scenario.line}", frozenset(str(t) for t in scenario.effective_tags),
                                  scenario.name))
    return found


def tag_filter(tags: list[str]) -> list[Any]:
    """The user's --tags, parsed before anything starts (each must hold); behave.ini's default
    (no @wip) when none is given."""
    from behave.tag_expression import make_tag_expression
    expressions = []
    for text in tags or ["not @wip"]:
        try:
            expressions.append(make_tag_expression(text))
        except Exception as exc:  # behave's TagExpressionError and parse errors of its grammar
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SpecError(f"bad tag expression {text!r}: {first}") from None
    return expressions


def selected(scenario: Scenario, expressions: list[Any]) -> bool:
    return all(e.check(scenario.tags) for e in expressions)


def deal(scenarios: list[Scenario], workers: int) -> list[Shard]:
    """Heaviest first, each to the lightest shard (greedy balancing)."""
    shards = [Shard(i) for i in range(max(1, workers))]
    for scenario in sorted(scenarios, key=lambda s: -s.weight):
        lightest = min(shards, key=lambda s: s.weight)
        lightest.scenarios.append(scenario)
        lightest.weight += scenario.weight
    return [s for s in shards if s.scenarios]


def behave_command(name: str, locations: list[str], tags: list[str], userdata: dict[str, str],
                   extra: list[str]) -> list[str]:
    """One behave process. Scenarios left out by the shard's split are not reported (the process
    that runs them reports them); scenarios skipped at run time are, with their reason."""
    junit = REPORTS / "junit-parts" / name
    records = REPORTS / "parts" / f"{name}.jsonl"  # behave.ini's records formatter, redirected
    defines = [a for key, value in {**userdata, "process": name, "records": records, "report_html": ""}.items()
               for a in ("-D", f"{key}={value}")]
    return [sys.executable, "-m", "behave", *defines, "--junit", f"--junit-directory={junit}", "--no-skipped",
            "-f", "plain", "-o", "-", *[f"--tags={t}" for t in tags], *extra, *locations]


@dataclass
class Process:
    name: str
    locations: tuple[str, ...]
    popen: subprocess.Popen[bytes]

    @property
    def records_path(self) -> Path:
        return REPORTS / "parts" / f"{self.name}.jsonl"


def launch(name: str, locations: list[str], tags: list[str], userdata: dict[str, str],
           extra: list[str]) -> Process:
    """Start one behave process; its console output goes to reports/<name>.log."""
    cmd = behave_command(name, locations, tags, userdata, extra)
    log = open(REPORTS / f"{name}.log", "wb")  # noqa: SIM115 (the child holds it; closed when we exit)
    return Process(name, tuple(locations), subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))


def progress_line(record: dict[str, Any]) -> str:
    """``T042 passed 1.3 s  Tool parameters are visible …``, with the first line of a failure,
    the reason of a skip and the measured figures beneath."""
    title = record.get("name", "")
    if record.get("outline") and record.get("example"):
        from .report import row_label
        title = f"{record['outline']} — {row_label(record)}"
    if len(title) > 90:
        title = title[:89] + "…"
    took = float(record.get("duration_s") or 0)
    took_text = f"{took * 1000:.0f} ms" if took < 1 else f"{took:.1f} s"
    line = f"{record.get('plan') or '----'} {record.get('status', '?'):7} {took_text:>7}  {title}"
    extra = []
    if record.get("status") in FAILED and record.get("error"):
        first = next((ln.strip() for ln in str(record["error"]).splitlines() if ln.strip()), "")
        extra.append(f"      ! {first[:300]}")
    if record.get("skip_reason"):
        extra.append(f"      skipped: {record['skip_reason']}")
    extra += [f"      measured: {f}" for f in record.get("figures", [])]
    return "\n".join([line, *extra])


class Progress:
    """Prints each process's new records as they appear."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def poll(self, processes: list[Process]) -> None:
        for proc in processes:
            records = read_records([proc.records_path])
            for record in records[self.seen.get(proc.name, 0):]:
                print(progress_line(record), flush=True)
            self.seen[proc.name] = len(records)


def wait_all(processes: list[Process], progress: Progress) -> None:
    while any(p.popen.poll() is None for p in processes):
        progress.poll(processes)
        time.sleep(POLL_S)  # a console refresh interval, not a wait for an outcome
    progress.poll(processes)


def junit_counts(name: str) -> tuple[int, int]:
    """(files, failed or errored test cases) of one process's JUnit directory."""
    import xml.etree.ElementTree as ET
    files = failures = 0
    for xml in sorted((REPORTS / "junit-parts" / name).glob("*.xml")):
        files += 1
        try:
            root = ET.parse(xml).getroot()
        except ET.ParseError:
            failures += 1
            continue
        for case in root.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failures += 1
    return files, failures


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


def write_skipped_junit(records: list[dict[str, Any]]) -> Path | None:
    """behave leaves scenarios skipped at run time out of a shard's JUnit (``--no-skipped`` keeps
    the shard's split out of it); the records hold them, so they are added here, each with its
    reason, so that CI counts them as skipped and never as passed."""
    import xml.etree.ElementTree as ET
    present = set()
    for xml in (REPORTS / "junit").glob("*.xml"):
        try:
            present |= {case.get("name") for case in ET.parse(xml).getroot().iter("testcase")}
        except ET.ParseError:
            continue  # a process killed while writing it: the verdict already counts that
    skipped = [r for r in records if r.get("status") in NOT_CHECKED and r.get("name") not in present]
    if not skipped:
        return None
    suite = ET.Element("testsuite", name="skipped at run time", tests=str(len(skipped)), skipped=str(len(skipped)),
                       failures="0", errors="0", time="0")
    for record in skipped:
        feature = record.get("feature") or {}
        case = ET.SubElement(suite, "testcase", classname=f"{Path(feature.get('file', 'features')).stem}."
                             f"{feature.get('name', '')}", name=record.get("name", ""), status="skipped", time="0")
        ET.SubElement(case, "skipped", message=record.get("skip_reason") or "not run")
    path = REPORTS / "junit" / "TESTS-skipped.xml"
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
    return path


def _clean_reports() -> None:
    REPORTS.mkdir(parents=True, exist_ok=True)
    for folder in ("junit-parts", "parts"):
        shutil.rmtree(REPORTS / folder, ignore_errors=True)
    (REPORTS / "parts").mkdir()
    for stale in [*REPORTS.glob("*.log"), *REPORTS.glob("specification*.html"),
                  REPORTS / "specification.json", REPORTS / "specification.jsonl", REPORTS / "specification.png"]:
        stale.unlink(missing_ok=True)


def run_spec(tags: list[str] | None = None, workers: int = 2, stack: str | None = None,
             extra: list[str] | None = None, features_dir: str = "features", allow_empty: bool = False,
             userdata: dict[str, str] | None = None) -> int:
    tags = tags or []
    extra = [a for a in (extra or []) if a != "--"]
    userdata = {**(userdata or {}), **({"stack": stack} if stack else {})}
    try:
        expressions = tag_filter(tags)
        everything = [s for s in scenarios_in(Path(features_dir)) if selected(s, expressions)]
    except SpecError as exc:
        print(f"agentevents spec: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not everything and not allow_empty:
        print(f"agentevents spec: no scenario matches {' and '.join(tags) or 'the default selection'} "
              "(--allow-empty to accept an empty run)", file=sys.stderr)
        return EXIT_USAGE
    from .world import StackTarget, TargetError
    try:
        target = StackTarget.from_userdata(userdata)
        target.start()
    except TargetError as exc:
        print(f"agentevents spec: {exc}", file=sys.stderr)
        return EXIT_USAGE if exc.usage else 1
    _clean_reports()
    started, wall = time.monotonic(), time.time()
    processes: list[Process] = []
    progress = Progress()
    from .records import plan_id
    plans = {plan_id(sorted(s.tags)) or s.location for s in everything}
    print(f"spec: {len(plans)} plan tests selected ({len(everything)} scenarios, outline rows counted)", flush=True)
    try:
        if target.mode == "native":
            shards = deal([s for s in everything if not s.exclusive], workers)
            alone = [s.location for s in everything if s.exclusive]
        else:  # one process: what this backend cannot run is reported as skipped, with the reason
            shards, alone = deal(everything, 1), []
        phase = [launch(f"shard-{s.index}", [x.location for x in s.scenarios], tags, userdata, extra)
                 for s in shards]
        processes += phase
        wait_all(phase, progress)
        shared_s = time.monotonic() - started
        if alone:
            print(f"spec: {len(shards)} shard(s) done in {shared_s:.1f} s; {len(alone)} scenarios that run alone",
                  flush=True)
            exclusive = launch("exclusive", alone, tags, userdata, extra)
            processes.append(exclusive)
            wait_all([exclusive], progress)
    except KeyboardInterrupt:
        for proc in processes:
            proc.popen.terminate()
        raise
    finally:
        target.stop()
    return finish(processes, len(everything), allow_empty,
                  meta={"target": f"{target.profile.name} ({target.mode})", "ws_url": target.ws_url,
                        "capabilities": ", ".join(sorted(target.capabilities)) or "none",
                        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(wall)),
                        "duration": f"{time.monotonic() - started:.1f} s",
                        "selection": " and ".join(tags) or "all (not @wip)"})


def finish(processes: list[Process], expected: int, allow_empty: bool, meta: dict[str, str]) -> int:
    """Gather the JUnit, judge the run, write the one report, print the verdict."""
    outcomes = []
    for proc in processes:
        files, failures = junit_counts(proc.name)
        outcomes.append(ProcessOutcome(proc.name, proc.popen.poll(), files, proc.locations, failures))
    gather_junit()
    records = read_records([p.records_path for p in processes])
    write_skipped_junit(records)
    verdict = judge(outcomes, records, expected=expected, allow_empty=allow_empty)
    (REPORTS / "specification.json").write_text(json.dumps(records, ensure_ascii=False, indent=1))
    from .report import render_report
    report = render_report(records, REPORTS / "specification.html", problems=verdict.problems, meta=meta)
    for problem in verdict.problems:
        print(f"spec: PROBLEM: {problem}")
    for outcome in outcomes:  # a process that ended badly: the end of its console says why
        if outcome.junit_files == 0 or outcome.returncode is None or outcome.returncode < 0:
            tail = (REPORTS / f"{outcome.name}.log").read_text(errors="replace").splitlines()[-12:]
            print(f"spec: last lines of {REPORTS / outcome.name}.log:\n" + "\n".join(f"    {ln}" for ln in tail))
    failed = [r for r in records if r.get("status") in FAILED]
    if failed:
        print("spec: failed: " + ", ".join(f"{r.get('plan') or r.get('location')}" for r in failed))
    print(f"spec: total {meta.get('duration', '?')}; report {report}; JUnit in {REPORTS / 'junit'}; "
          f"logs in {REPORTS}/*.log")
    print(verdict.line)
    return verdict.exit_code
