"""The product owner's HTML report of a specification run.

A run of the behave specification produces one record (a dict) per executed scenario; an outline
row is one record. Records that share a plan test id (the ``T001`` tag) are one *promise* of the
plan. :func:`summarize` groups the records by feature and plan test and counts, per feature and
overall, how many promises hold, fail or were not checked. :func:`render_report` writes the whole
result as one self-contained HTML page (inline CSS, no script, no external address): a summary a
product owner understands first, the coverage (what each promise needs from the backend, and its
result), then each feature's promises with their business value, result and measured figures, and
the developer detail (steps, locations, full errors) in collapsed ``<details>``.

A record looks like this (keys other than ``name`` and ``status`` may be missing)::

    {"process": "shard-0",
     "feature": {"name": "...", "file": "features/x.feature", "description": ["In order to ...", ...]},
     "name": "...", "plan": "T002", "outline": None, "example": None, "tags": ["T002", "timing"],
     "location": "features/x.feature:17", "description": ["business value", ...],
     "status": "passed" | "failed" | "error" | "skipped" | "untested",
     "skip_reason": None, "duration_s": 0.42, "figures": ["..."], "error": None,
     "steps": [{"keyword": "Given", "name": "...", "status": "passed", "duration_s": 0.01,
                "location": "features/steps/x.py:12", "error": None}]}
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jinja2

from .capabilities import needed
from .records import NOT_CHECKED as NOT_RUN

__all__ = [
    "FAILS",
    "HOLDS",
    "NOT_CHECKED",
    "NOT_RUN_STATUSES",
    "Counts",
    "FeatureResult",
    "PlanResult",
    "Summary",
    "render_report",
    "summarize",
]

HOLDS = "holds"
FAILS = "fails"
NOT_CHECKED = "not checked"

PASSED = "passed"
NOT_RUN_STATUSES = frozenset(NOT_RUN)  # the records' statuses of a scenario that did not run

# What a person reads for a record's status; an unknown status is shown as it is.
STATUS_WORDS = {
    "passed": "Passed",
    "failed": "Failed",
    "error": "Error",
    "skipped": "Skipped",
    "untested": "Not run",
}


@dataclass(frozen=True)
class Counts:
    """How many promises (plan tests) hold, fail, or were not checked."""

    hold: int = 0
    fail: int = 0
    not_checked: int = 0

    @property
    def total(self) -> int:
        return self.hold + self.fail + self.not_checked

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.hold + other.hold, self.fail + other.fail, self.not_checked + other.not_checked)

    @property
    def sentence(self) -> str:
        """``"118 of 120 promises hold, 1 fails, 1 not checked"``."""
        promises = "promise" if self.total == 1 else "promises"
        hold = "holds" if self.hold == 1 else "hold"
        fail = "fails" if self.fail == 1 else "fail"
        return f"{self.hold} of {self.total} {promises} {hold}, {self.fail} {fail}, {self.not_checked} not checked"

    def as_dict(self) -> dict[str, int]:
        return {"total": self.total, "hold": self.hold, "fail": self.fail, "not_checked": self.not_checked}


@dataclass
class PlanResult:
    """One plan test: the records (one, or one per outline row) that carry its plan id."""

    plan: str
    title: str
    outcome: str  # HOLDS, FAILS or NOT_CHECKED
    records: list[dict[str, Any]]
    outline: str | None = None

    @property
    def description(self) -> list[str]:
        """The business value: the scenario's description lines (the first record that has them)."""
        for record in self.records:
            if record.get("description"):
                return list(record["description"])
        return []

    @property
    def needs(self) -> list[str]:
        """The capabilities of a backend its records' tags name (any row of an outline), in the registry's order."""
        union = {c for record in self.records for c in needed(record.get("tags") or [])}
        return needed(union)

    def needed_by(self, capability: str) -> int:
        """How many of its records (an outline's rows) need ``capability``."""
        return sum(1 for record in self.records if capability in needed(record.get("tags") or []))

    @property
    def figures(self) -> list[str]:
        return [figure for record in self.records for figure in record.get("figures") or []]

    @property
    def skip_reasons(self) -> list[str]:
        """Distinct reasons of the records that did not run, in order."""
        reasons: list[str] = []
        for record in self.records:
            if record.get("status") in NOT_RUN_STATUSES:
                reason = record.get("skip_reason") or "no reason recorded"
                if reason not in reasons:
                    reasons.append(reason)
        return reasons

    @property
    def not_run(self) -> int:
        """How many of its records were skipped or not run."""
        return sum(1 for record in self.records if record.get("status") in NOT_RUN_STATUSES)

    @property
    def first_error(self) -> str | None:
        """The first line of the first failing record's error."""
        for record in self.records:
            if _fails(record):
                return first_line(record.get("error")) or f"the scenario ended with status {record.get('status')!r}"
        return None

    @property
    def duration_s(self) -> float:
        return sum(float(record.get("duration_s") or 0.0) for record in self.records)

    @property
    def is_outline(self) -> bool:
        return self.outline is not None or len(self.records) > 1


@dataclass
class FeatureResult:
    """One feature: its narrative, its promises and their counts."""

    name: str
    file: str | None
    description: list[str]
    plans: list[PlanResult] = field(default_factory=list)

    @property
    def counts(self) -> Counts:
        return _count(self.plans)

    @property
    def anchor(self) -> str:
        return "f-" + (re.sub(r"[^A-Za-z0-9]+", "-", self.file or self.name).strip("-").lower() or "feature")


@dataclass
class Summary:
    """All features of a run, in plan order, and the overall counts."""

    features: list[FeatureResult]
    records: int

    @property
    def counts(self) -> Counts:
        total = Counts()
        for feature in self.features:
            total = total + feature.counts
        return total

    @property
    def plans(self) -> list[PlanResult]:
        return [plan for feature in self.features for plan in feature.plans]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form: overall and per-feature counts, and the plan ids by outcome."""
        return {
            "counts": self.counts.as_dict(),
            "records": self.records,
            "features": [
                {"name": f.name, "file": f.file, "counts": f.counts.as_dict()} for f in self.features
            ],
            "plans": {outcome: [p.plan for p in self.plans if p.outcome == outcome]
                      for outcome in (HOLDS, FAILS, NOT_CHECKED)},
        }


def first_line(text: str | None) -> str:
    """The first non-empty line of ``text``, or ``""``."""
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


RECORD_DEFAULTS: dict[str, Any] = {
    "process": None, "feature": None, "name": "", "plan": None, "outline": None, "example": None, "tags": [],
    "location": None, "description": [], "status": "untested", "skip_reason": None, "duration_s": None,
    "figures": [], "error": None, "steps": [],
}
STEP_DEFAULTS: dict[str, Any] = {
    "keyword": "", "name": "", "status": "untested", "duration_s": None, "location": None, "error": None,
}


def row_label(record: Mapping[str, Any]) -> str:
    """What tells an outline's rows apart: the example's values, else the row's generated name."""
    example = record.get("example")
    if example:
        return " · ".join(str(value) for value in example.values())
    return str(record.get("name") or "")


def _normalized(record: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``record`` with every key the report reads (missing ones get their empty value)."""
    full = {**RECORD_DEFAULTS, **{k: v for k, v in record.items() if v is not None}}
    full["steps"] = [{**STEP_DEFAULTS, **{k: v for k, v in step.items() if v is not None}}
                     for step in full["steps"] or []]
    return full


def _fails(record: Mapping[str, Any]) -> bool:
    status = record.get("status")
    return status != PASSED and status not in NOT_RUN_STATUSES


def plan_outcome(records: Sequence[Mapping[str, Any]]) -> str:
    """HOLDS when every record passed; FAILS when any failed or errored (or has a status not known to
    mean "passed" or "not run"); NOT_CHECKED otherwise: all, or some, of its rows did not run."""
    if any(_fails(r) for r in records):
        return FAILS
    if records and all(r.get("status") == PASSED for r in records):
        return HOLDS
    return NOT_CHECKED


def _count(plans: Iterable[PlanResult]) -> Counts:
    outcomes = [p.outcome for p in plans]
    return Counts(outcomes.count(HOLDS), outcomes.count(FAILS), outcomes.count(NOT_CHECKED))


def _natural(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _line_no(record: Mapping[str, Any]) -> int:
    location = str(record.get("location") or "")
    tail = location.rpartition(":")[2]
    return int(tail) if tail.isdigit() else 0


def summarize(records: Iterable[Mapping[str, Any]]) -> Summary:
    """Group records by feature, then by plan test id, and count the outcomes.

    A record without a plan id is a promise of its own, named by its title. Features come in the
    order of their first plan id (T001's feature first), promises by plan id, outline rows by line.
    """
    features: dict[str, FeatureResult] = {}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    count = 0
    for record in records:
        count += 1
        record = _normalized(record)
        feature = record.get("feature") or {}
        key = feature.get("file") or feature.get("name") or "(no feature)"
        if key not in features:
            features[key] = FeatureResult(
                name=feature.get("name") or key,
                file=feature.get("file"),
                description=list(feature.get("description") or []),
            )
        plan = record.get("plan") or record.get("outline") or record.get("name") or "(unnamed)"
        groups.setdefault((key, plan), []).append(record)
    for (key, plan), members in groups.items():
        members.sort(key=_line_no)
        outline = next((m["outline"] for m in members if m.get("outline")), None)
        title = outline or members[0].get("name") or plan
        features[key].plans.append(PlanResult(plan, title, plan_outcome(members), members, outline))
    for feature in features.values():
        feature.plans.sort(key=lambda p: _natural(p.plan))
    ordered = sorted(features.values(), key=lambda f: (_natural(f.plans[0].plan), f.name))
    return Summary(ordered, count)


def _duration(seconds: Any) -> str:
    if seconds is None:
        return ""
    seconds = float(seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("agentevents.testing", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "j2"), default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["duration"] = _duration
    env.filters["row_label"] = row_label
    env.filters["first_line"] = first_line
    env.filters["status_word"] = lambda status: STATUS_WORDS.get(status, str(status))
    return env


def render_report(
    records: list[dict[str, Any]],
    out: pathlib.Path,
    *,
    problems: Sequence[str] = (),
    meta: Mapping[str, str] | None = None,
) -> pathlib.Path:
    """Write the report of ``records`` as one self-contained HTML file at ``out``; returns ``out``.

    ``problems`` (things that went wrong with the run itself, such as a process that wrote no
    results) are shown first and prominently; ``meta`` (target, start, duration, command, ...) is
    shown small in the header.
    """
    summary = summarize(records)
    processes: dict[str, int] = {}
    for record in records:
        if record.get("process"):
            name = str(record["process"])
            processes[name] = processes.get(name, 0) + 1
    html = _environment().get_template("report.html.j2").render(
        summary=summary,
        counts=summary.counts,
        problems=list(problems),
        meta=dict(meta or {}),
        processes=dict(sorted(processes.items(), key=lambda item: _natural(item[0]))),
        HOLDS=HOLDS,
        FAILS=FAILS,
        NOT_CHECKED=NOT_CHECKED,
    )
    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out
