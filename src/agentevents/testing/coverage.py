"""The coverage matrix: which plan test needs which capability of a backend, read from the features.

Each plan test (a scenario's ``@Tnnn`` tag) needs the capabilities its tags name, the feature's and
an outline's examples' tags included (``capabilities.needed``). :func:`coverage_rows` reads them
from the ``.feature`` files, one row per plan test in plan order, with the result of a run when its
records are given; :func:`render_markdown` writes the rows as ``docs/coverage.md``. A backend's
owner reads there what the kit can check against a backend that declares only some capabilities.

    python -m agentevents.testing.coverage [--features features] [--records reports/specification.json]
                                           [--output docs/coverage.md] [--check]

``--check`` compares the file with what the features give and exits 1 when they differ; the
"Last run" column is left out of the comparison, so the check does not depend on any run.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from behave.model import ScenarioOutline
from behave.parser import ParserError, parse_file

from .capabilities import CAPABILITIES, needed
from .records import plan_id
from .report import FAILS, HOLDS, NOT_RUN_STATUSES, plan_outcome

__all__ = ["NO_RESULT", "CoverageError", "Row", "check", "coverage_rows", "main", "render_markdown"]

NO_RESULT = "—"
PASSED = "passed"
FAILED = "failed"
NOT_CHECKED = "not checked"
PROTOCOL_ONLY = "protocol only"
COMMAND = "python -m agentevents.testing.coverage"
MATRIX_HEADER = "| Plan | Feature | Scenario | Needs | Last run |"
RUN_NOTE_PREFIX = "Last run: "
# A table cell boundary: a pipe that is not escaped as ``\|``.
CELL = re.compile(r"(?<!\\)\|")


class CoverageError(Exception):
    """A mistake in the input (features, records, output): one line for the user."""


@dataclass(frozen=True)
class Row:
    """One plan test: where it is, what it needs, and how it did in the last run."""

    plan: str
    feature: str
    scenario: str
    row_needs: tuple[tuple[str, ...], ...]  # the capabilities of each scenario it runs as (an outline's rows)
    result: str = NO_RESULT

    @property
    def needs(self) -> list[str]:
        """The capabilities any of its scenarios needs, in the registry's order."""
        union = {c for needs in self.row_needs for c in needs}
        return [c for c in CAPABILITIES if c in union]

    @property
    def examples(self) -> int:
        return len(self.row_needs)

    def needed_by(self, capability: str) -> int:
        """How many of its scenarios (an outline's rows) need ``capability``."""
        return sum(1 for needs in self.row_needs if capability in needs)


# -- reading the features ------------------------------------------------------------------------

def _scenarios(path: Path) -> Iterable[tuple[str, str, list[list[str]]]]:
    """``(feature name, title, tags of each scenario it runs as)`` for every scenario of a file;
    an outline is one entry, named by the outline, with one tag list per example row."""
    try:
        feature = parse_file(str(path))
    except ParserError as exc:
        raise CoverageError(f"cannot parse {path}: {' '.join(str(exc).split())}") from None
    if feature is None:
        return
    rows: set[int] = set()
    for scenario in feature.walk_scenarios(with_outlines=True):
        if isinstance(scenario, ScenarioOutline):
            generated = list(scenario.scenarios)
            rows.update(id(row) for row in generated)
            members = generated or [scenario]
            yield feature.name, scenario.name, [[str(t) for t in m.effective_tags] for m in members]
        elif id(scenario) not in rows:
            yield feature.name, scenario.name, [[str(t) for t in scenario.effective_tags]]


def _result(records: Sequence[Mapping[str, Any]]) -> str:
    """passed, failed, or "not checked: <reason>" for the records of one plan test."""
    if not records:
        return f"{NOT_CHECKED}: not in this run"
    outcome = plan_outcome(records)
    if outcome == FAILS:
        return FAILED
    if outcome == HOLDS:
        return PASSED
    reasons: list[str] = []
    not_run = 0
    for record in records:
        if record.get("status") in NOT_RUN_STATUSES:
            not_run += 1
            reason = record.get("skip_reason") or "no reason recorded"
            if reason not in reasons:
                reasons.append(reason)
    share = f" ({not_run} of {len(records)} examples did not run)" if not_run < len(records) else ""
    return f"{NOT_CHECKED}{share}: {'; '.join(reasons)}"


def coverage_rows(features_dir: Path, records: list[dict[str, Any]] | None = None) -> list[Row]:
    """One row per plan test of the ``.feature`` files under ``features_dir``, in plan order.

    Without ``records`` every result is ``—``; with them (dicts with "plan", "status" and
    "skip_reason", as in reports/specification.json) a plan test's result is "failed" when any of
    its records failed or errored, "passed" when all passed, else "not checked" with the reason.
    """
    features_dir = Path(features_dir)
    if not features_dir.is_dir():
        raise CoverageError(f"no such folder of feature files: {features_dir}")
    found: dict[str, tuple[str, str, list[list[str]]]] = {}
    for path in sorted(features_dir.rglob("*.feature")):
        for feature, title, members in _scenarios(path):
            plan = plan_id(sorted({t for tags in members for t in tags}))
            if plan is None:
                continue
            if plan in found:  # the same plan id on two scenarios: one plan test, needing what both need
                found[plan][2].extend(members)
            else:
                found[plan] = (feature, title, list(members))
    if not found:
        raise CoverageError(f"no plan test (a @Tnnn tag) in the feature files under {features_dir}")
    by_plan: dict[str, list[dict[str, Any]]] = {}
    for record in records or []:
        if record.get("plan"):
            by_plan.setdefault(str(record["plan"]), []).append(record)
    return [Row(plan, feature, title, tuple(tuple(needed(tags)) for tags in members),
                NO_RESULT if records is None else _result(by_plan.get(plan, [])))
            for plan, (feature, title, members) in sorted(found.items())]


# -- writing the matrix --------------------------------------------------------------------------

def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _short(feature: str) -> str:
    """A feature's name up to its colon: "Delivery" for "Delivery: every event reaches ..."."""
    return feature.split(":", 1)[0].strip() or feature


def _needs_cell(row: Row) -> str:
    if not row.needs:
        return PROTOCOL_ONLY
    shown = []
    for capability in row.needs:
        count = row.needed_by(capability)
        share = f" ({count} of {row.examples} examples)" if count < row.examples else ""
        shown.append(f"`{capability}`{share}")
    return ", ".join(shown)


def render_markdown(rows: Sequence[Row], *, run_note: str = "") -> str:
    """``docs/coverage.md``: what it is, the capabilities with how many plan tests need each, the matrix."""
    bare = sum(1 for row in rows if not row.needs)
    lines = [
        "# Coverage: what each plan test needs from a backend",
        "",
        f"Generated from the feature files by `{COMMAND}`; do not edit it, run that again after changing a "
        "scenario's tags (`--records reports/specification.json` fills in the last run).",
    ]
    if run_note:
        lines += ["", RUN_NOTE_PREFIX + " ".join(run_note.split())]
    lines += [
        "",
        "A backend declares the capabilities it offers in its target profile; a plan test that needs one it "
        f"does not declare is skipped, with the reason. {bare} of the {len(rows)} plan tests "
        f"{'needs' if bare == 1 else 'need'} none: a backend that implements only [the protocol](protocol.md) "
        f"runs {'it' if bare == 1 else 'them'}.",
        "",
        "| Capability | Plan tests | Meaning |",
        "|---|---:|---|",
    ]
    for capability, meaning in CAPABILITIES.items():
        count = sum(1 for row in rows if capability in row.needs)
        lines.append(f"| `{capability}` | {count} | {_cell(meaning)} |")
    lines += [
        "",
        "## The matrix",
        "",
        MATRIX_HEADER,
        "|---|---|---|---|---|",
    ]
    for row in rows:
        cells = (row.plan, _short(row.feature), row.scenario, _needs_cell(row), row.result)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _without_results(text: str) -> list[str]:
    """The lines of a matrix file without what depends on a run: the run note and the last column."""
    out: list[str] = []
    in_matrix = False
    for line in text.splitlines():
        if line.startswith(RUN_NOTE_PREFIX):
            if out and not out[-1]:
                out.pop()  # the blank line that set the note apart
            continue
        if line.strip() == MATRIX_HEADER:
            in_matrix = True
        elif in_matrix and not line.startswith("|"):
            in_matrix = False
        if in_matrix:
            cells = CELL.split(line.rstrip())
            if len(cells) >= 3:
                line = "|".join(cells[:-2] + [""])
        out.append(line.rstrip())
    while out and not out[-1]:
        out.pop()
    return out


def check(expected: str, actual: str) -> int | None:
    """The first line (1-based) where ``actual`` differs from ``expected``, results aside; None if none."""
    want, have = _without_results(expected), _without_results(actual)
    for number, (a, b) in enumerate(zip(want, have, strict=False), start=1):
        if a != b:
            return number
    if len(want) != len(have):
        return min(len(want), len(have)) + 1
    return None


# -- command line --------------------------------------------------------------------------------

def _shown(path: Path) -> str:
    """A path as the reader should see it: relative to the working directory, never a machine path."""
    if not path.is_absolute():
        return path.as_posix()
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path.name


def load_records(path: Path) -> list[dict[str, Any]]:
    """The records of a run: a JSON list (reports/specification.json) or JSON lines (``.jsonl``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CoverageError(f"cannot read the records {_shown(path)}: {exc.strerror or exc}") from None
    try:
        if path.suffix == ".jsonl":
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            records = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CoverageError(f"{_shown(path)} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise CoverageError(f"{_shown(path)} holds no list of records (JSON objects)")
    return records


def run_note(rows: Sequence[Row], records_path: Path) -> str:
    """The note on a run: ``118 passed, 1 failed, 1 not checked (reports/specification.json).``"""
    results = [row.result for row in rows]
    passed, failed = results.count(PASSED), results.count(FAILED)
    return (f"{passed} passed, {failed} failed, {len(results) - passed - failed} not checked "
            f"({_shown(records_path)}).")


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=COMMAND, description="Write or check docs/coverage.md, the matrix of "
                                     "what each plan test needs from a backend.")
    parser.add_argument("--features", type=Path, default=Path("features"), help="the folder of .feature files")
    parser.add_argument("--records", type=Path, help="a run's records (reports/specification.json) for the "
                        "Last run column")
    parser.add_argument("--output", type=Path, default=Path("docs/coverage.md"), help="the matrix file")
    parser.add_argument("--check", action="store_true", help="exit 1 when the file differs from what the "
                        "features give (the Last run column aside); write nothing")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        records = load_records(args.records) if args.records is not None else None
        rows = coverage_rows(args.features, records)
        text = render_markdown(rows, run_note=run_note(rows, args.records) if args.records is not None else "")
        output = _shown(args.output)
        if args.check:
            try:
                current = args.output.read_text(encoding="utf-8")
            except OSError as exc:
                print(f"coverage: cannot read {output}: {exc.strerror or exc}; write it with {COMMAND}",
                      file=sys.stderr)
                return 1
            line = check(text, current)
            if line is not None:
                print(f"coverage: {output} differs from what {_shown(args.features)} gives (first at line {line}); "
                      f"regenerate it with {COMMAND}", file=sys.stderr)
                return 1
            print(f"coverage: {output} matches the {len(rows)} plan tests of {_shown(args.features)}")
            return 0
        try:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CoverageError(f"cannot write {output}: {exc.strerror or exc}") from None
    except CoverageError as exc:
        print(f"coverage: {exc}", file=sys.stderr)
        return 2
    print(f"coverage: wrote {output} ({len(rows)} plan tests)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
