"""The run's records: one JSON line per executed scenario, written by a behave formatter.

A record holds what every report needs — the feature and its narrative, the scenario's plan id,
title and business value, its result (with the skip reason or the first failure), the figures it
measured (``testing.figures``), and the steps for developers. Each behave process writes its own
file, one line as soon as a scenario ends, so the sharded runner can print progress while a run
goes and write one report from all processes afterwards. Plain ``behave`` renders the HTML
report from its own records when ``-D report_html=PATH`` is set (behave.ini sets it).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from behave.formatter.base import Formatter, StreamOpener

from .figures import FIGURE_MIME

PLAN_TAG = re.compile(r"^T\d{3}$")
FAILED = ("failed", "error")
NOT_CHECKED = ("skipped", "untested")
STATUS_NAMES = {"hook_error": "error", "cleanup_error": "error", "undefined": "error", "pending": "error"}


def plan_id(tags: list[str]) -> str | None:
    """The plan test a scenario implements (its @Tnnn tag)."""
    return next((t for t in tags if PLAN_TAG.match(t)), None)


def _lines(text: Any) -> list[str]:
    if not text:
        return []
    if isinstance(text, str):
        return text.splitlines()
    return [str(line) for line in text]


def _status(status: Any) -> str:
    name = getattr(status, "name", str(status))
    return STATUS_NAMES.get(name, name)


def _location(location: Any) -> str:
    return str(location) if location else ""


class RecordFormatter(Formatter):
    """behave.ini names it ``records`` (to ``reports/specification.jsonl``); ``-D records=PATH`` sends
    the lines elsewhere (the sharded runner gives each process its own file)."""

    name = "records"
    description = "one JSON line per scenario: result, business value, figures, steps"

    def __init__(self, stream_opener: Any, config: Any) -> None:
        if config.userdata.get("records"):
            stream_opener = StreamOpener(filename=config.userdata["records"])
        super().__init__(stream_opener, config)
        self.stream = self.open()
        self.process = config.userdata.get("process", "behave")
        self.report_html = "" if config.dry_run else config.userdata.get("report_html", "")
        self.records: list[dict[str, Any]] = []
        self._feature: dict[str, Any] | None = None
        self._scenario: Any = None
        self._figures: list[str] = []
        self._steps: list[Any] = []

    # behave's formatter interface
    def feature(self, feature: Any) -> None:
        self._finish()
        self._feature = {"name": feature.name, "file": feature.filename,
                         "description": _lines(feature.description)}

    def scenario(self, scenario: Any) -> None:
        self._finish()
        self._scenario = scenario
        self._figures = []
        self._steps = []

    def step(self, step: Any) -> None:
        pass

    def result(self, step: Any) -> None:
        if self._scenario is not None:
            self._steps.append(step)

    def embedding(self, mime_type: str, data: bytes) -> None:
        if mime_type == FIGURE_MIME and self._scenario is not None:
            self._figures.append(data.decode("utf-8"))

    def eof(self) -> None:
        self._finish()

    def close(self) -> None:
        self._finish()
        self.close_stream()
        if self.report_html:
            from .report import render_report
            render_report(self.records, Path(self.report_html), meta={"process": self.process})

    # the record
    def _finish(self) -> None:
        scenario, self._scenario = self._scenario, None
        if scenario is None or self._feature is None:
            return
        record = scenario_record(scenario, self._feature, self._steps, self._figures, self.process)
        self.records.append(record)
        self.stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.stream.flush()


def scenario_record(scenario: Any, feature: dict[str, Any], steps: list[Any], figures: list[str],
                    process: str) -> dict[str, Any]:
    tags = [str(t) for t in scenario.effective_tags]
    status = _status(scenario.status)
    if getattr(scenario, "hook_failed", False):
        status = "error"
    step_rows = [{"keyword": s.keyword, "name": s.name, "status": _status(s.status),
                  "duration_s": round(s.duration or 0.0, 3), "location": _location(getattr(s, "location", "")),
                  "error": s.error_message if s.status.name in ("failed", "error", "undefined") else None}
                 for s in steps]
    error = next((s["error"] for s in step_rows if s["error"]), None)
    if error is None and status in FAILED:
        error = getattr(scenario, "error_message", None) or "failed outside its steps (a hook or a cleanup)"
    row = getattr(scenario, "_row", None)
    outline = row is not None
    return {
        "process": process,
        "feature": feature,
        "name": scenario.name,
        "plan": plan_id(tags),
        "outline": _outline_name(scenario) if outline else None,
        "example": dict(zip(row.headings, row.cells, strict=False)) if outline else None,  # the row's values
        "tags": sorted(set(tags)),
        "location": _location(scenario.location),
        "description": _lines(scenario.description),
        "status": status,
        "skip_reason": (getattr(scenario, "skip_reason", None) or None) if status in NOT_CHECKED else None,
        "duration_s": round(scenario.duration or 0.0, 3),
        "figures": list(figures),
        "error": error,
        "steps": step_rows,
    }


def _outline_name(scenario: Any) -> str:
    """A row's Scenario Outline (behave makes the outline the row's parent)."""
    return getattr(getattr(scenario, "parent", None), "name", None) or scenario.name.split(" -- @")[0]


def read_records(paths: list[Path]) -> list[dict[str, Any]]:
    """Every record of these files, in order; a half-written last line (a killed process) is left out."""
    records = []
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records
