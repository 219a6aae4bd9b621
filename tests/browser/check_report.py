"""Checks a specification run's HTML report the way a person reads it: in a real headless Chromium.

Usage (from the repository root)::

    .venv/bin/python -m tests.browser.check_report REPORT RECORDS FEATURES_DIR

REPORT is the ``specification.html`` of a run, RECORDS the JSON list of the run's records and
FEATURES_DIR the folder of ``.feature`` files. Without expanding anything, every scenario title of
the feature files (an outline's own name), the summary counts computed from RECORDS, each
promise's result, every measured figure, every business value line and every skip reason must
be visible text, and the page must ask for nothing but itself. A full-page screenshot is saved
next to the report (``specification.png`` for ``specification.html``). Prints one line per
problem and exits 1 when there is any, 2 when the input cannot be read, 0 otherwise.

:func:`open_page` is the one way these checks, and the browser tests, start Chromium: Debian's
``/usr/bin/chromium`` (``bash scripts/install-system-deps.sh`` installs it), a fresh profile,
JavaScript off unless asked for, every request other than ``file:`` refused and recorded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from behave.model import ScenarioOutline
from behave.parser import parse_file
from playwright.sync_api import Page, Route, sync_playwright

from agentevents.testing.report import NOT_RUN_STATUSES, summarize

CHROMIUM = pathlib.Path(os.environ.get("AE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
COUNT_KEYS = ("total", "hold", "fail", "not_checked")
WORDS = {"holds": "Holds", "fails": "Fails", "not checked": "Not checked"}


class BrowserMissing(RuntimeError):
    """Chromium is not installed where the checks expect it."""


@dataclass
class ReportPage:
    """An open report: the Playwright page and the requests it made for anything but a file."""

    page: Page
    foreign_requests: list[str] = field(default_factory=list)


@contextlib.contextmanager
def open_page(html: pathlib.Path, *, javascript: bool = False, width: int = 1200, height: int = 900) -> Iterator[
    ReportPage
]:
    """Open ``html`` in headless Chromium with a fresh profile; closes the browser on exit."""
    if not CHROMIUM.is_file():
        raise BrowserMissing(f"{CHROMIUM} not found: install Debian's chromium (bash scripts/install-system-deps.sh)")
    html = pathlib.Path(html).resolve()
    with tempfile.TemporaryDirectory(prefix="ae-chromium-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            user_data_dir=profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            java_script_enabled=javascript,
            viewport={"width": width, "height": height},
        )
        try:
            opened = ReportPage(context.pages[0] if context.pages else context.new_page())

            def refuse_foreign(route: Route) -> None:
                if route.request.url.startswith("file:"):
                    route.continue_()
                else:
                    opened.foreign_requests.append(route.request.url)
                    route.abort()

            context.route("**/*", refuse_foreign)
            opened.page.goto(html.as_uri(), wait_until="load")
            yield opened
        finally:
            context.close()


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def visible_text(page: Page) -> str:
    """The body's rendered text (closed ``<details>`` contribute only their summary), on one line."""
    return one_line(page.inner_text("body"))


def feature_titles(features_dir: pathlib.Path) -> list[tuple[str, str]]:
    """``(location, title)`` of every scenario in the ``.feature`` files; an outline counts once, by its name."""
    titles: list[tuple[str, str]] = []
    for path in sorted(pathlib.Path(features_dir).rglob("*.feature")):
        feature = parse_file(str(path))
        if feature is None:
            continue
        rows: set[int] = set()  # scenarios generated from an outline's examples: the outline stands for them
        for scenario in feature.walk_scenarios(with_outlines=True):
            if isinstance(scenario, ScenarioOutline):
                rows.update(id(row) for row in scenario.scenarios)
            elif id(scenario) in rows:
                continue
            titles.append((f"{path}:{scenario.line}", scenario.name))
    return titles


def _count(page: Page, selector: str) -> int | str:
    cell = page.locator(selector)
    if cell.count() != 1:
        return f"{cell.count()} elements match {selector}"
    if not cell.is_visible():
        return "not visible"
    text = cell.inner_text().strip()
    return int(text) if text.isdigit() else f"{text!r} is no number"


def _css_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check_page(page: Page, records: Sequence[dict[str, Any]], features_dir: pathlib.Path | None) -> list[str]:
    """Problems with the open report of ``records``: one sentence each; empty when it reads as it should."""
    problems: list[str] = []
    text = visible_text(page)
    headings = {one_line(h) for h in page.locator("article.plan h3").all_inner_texts()}

    if features_dir is not None:
        titles = feature_titles(features_dir)
        if not titles:
            problems.append(f"no scenario found in the feature files under {features_dir}")
        for location, title in titles:
            if one_line(title) not in headings:
                problems.append(f"scenario title not visible as a promise heading: {title!r} ({location})")

    summary = summarize(records)
    expected = summary.counts.as_dict()
    for key in COUNT_KEYS:
        shown = _count(page, f'[data-summary="overall"] [data-count="{key}"]')
        if shown != expected[key]:
            problems.append(f"overall count {key!r}: the page shows {shown}, the records give {expected[key]}")
    if one_line(summary.counts.sentence) not in text:
        problems.append(f"the summary sentence {summary.counts.sentence!r} is not visible")
    rows = page.locator("tr[data-feature]")
    if rows.count() != len(summary.features):
        problems.append(f"the summary lists {rows.count()} features, the records have {len(summary.features)}")
    for feature in summary.features:
        row = f"tr[data-feature={_css_string(feature.name)}]"
        if page.locator(row).count() != 1:
            problems.append(f"feature {feature.name!r} is not in the summary table once")
            continue
        counts = feature.counts.as_dict()
        for key in COUNT_KEYS[1:]:
            shown = _count(page, f'{row} [data-count="{key}"]')
            if shown != counts[key]:
                problems.append(f"feature {feature.name!r} count {key!r}: the page shows {shown}, "
                                f"the records give {counts[key]}")
        for line in feature.description:
            if one_line(line) and one_line(line) not in text:
                problems.append(f"feature {feature.name!r}: narrative line not visible: {line!r}")

    for plan in summary.plans:
        article = page.locator(f"article[data-plan={_css_string(plan.plan)}]")
        if article.count() != 1:
            problems.append(f"{plan.plan}: {article.count()} promises on the page carry this id, expected 1")
            continue
        if article.get_attribute("data-outcome") != plan.outcome:
            problems.append(f"{plan.plan}: shown as {article.get_attribute('data-outcome')!r}, "
                            f"the records give {plan.outcome!r}")
        result = article.locator(".plan-head .result")
        if not result.is_visible() or WORDS[plan.outcome] not in result.inner_text():
            problems.append(f"{plan.plan}: the result {WORDS[plan.outcome]!r} is not visible")
        for line in plan.description:
            if one_line(line) and one_line(line) not in text:
                problems.append(f"{plan.plan}: business value not visible: {line!r}")
        for record in plan.records:
            if record["status"] in NOT_RUN_STATUSES and record["skip_reason"]:
                if one_line(record["skip_reason"]) not in text:
                    problems.append(f"{plan.plan}: skip reason not visible: {record['skip_reason']!r}")
        if plan.first_error and one_line(plan.first_error) not in text:
            problems.append(f"{plan.plan}: the first error line is not visible: {plan.first_error!r}")

    for record in records:
        for figure in record.get("figures") or []:
            if one_line(figure) not in text:
                problems.append(f"figure not visible: {figure!r} ({record.get('plan') or record.get('name')})")
    return problems


def check_report(
    report: pathlib.Path,
    records: Sequence[dict[str, Any]],
    features_dir: pathlib.Path | None = None,
    *,
    screenshot: pathlib.Path | None = None,
) -> list[str]:
    """Open ``report`` in Chromium, check it against ``records`` (and the feature files), save a
    full-page screenshot (by default next to the report, ``.png`` for ``.html``); returns the problems."""
    report = pathlib.Path(report)
    if not report.is_file():
        return [f"report not found: {report}"]
    shot = screenshot or report.with_suffix(".png")
    with open_page(report) as opened:
        problems = check_page(opened.page, records, features_dir)
        opened.page.screenshot(path=str(shot), full_page=True)
        problems += [f"the report asked for something outside itself: {url}" for url in opened.foreign_requests]
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="check_report", description=__doc__.splitlines()[0])
    parser.add_argument("report", type=pathlib.Path, help="the run's specification.html")
    parser.add_argument("records", type=pathlib.Path, help="the run's merged records (a JSON list)")
    parser.add_argument("features_dir", type=pathlib.Path, help="the folder of .feature files")
    args = parser.parse_args(argv)
    try:
        records = json.loads(args.records.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"report check: cannot read the records {args.records}: {exc}", file=sys.stderr)
        return 2
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        print(f"report check: {args.records} is not a JSON list of records", file=sys.stderr)
        return 2
    if not args.features_dir.is_dir():
        print(f"report check: no such folder of feature files: {args.features_dir}", file=sys.stderr)
        return 2
    try:
        problems = check_report(args.report, records, args.features_dir)
    except BrowserMissing as exc:
        print(f"report check: {exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"report problem: {problem}")
    if problems:
        return 1
    summary = summarize(records)
    print(f"report check: ok, {summary.counts.sentence}; screenshot {args.report.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
