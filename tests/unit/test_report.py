"""The product owner's HTML report without a browser: counting promises, grouping outline rows,
escaping, and what is shown at once versus inside the collapsed developer detail."""

from __future__ import annotations

import pathlib
from html.parser import HTMLParser
from typing import Any

import pytest

from agentevents.testing.report import FAILS, HOLDS, NOT_CHECKED, Counts, plan_outcome, render_report, summarize

FEATURE_A = {"name": "The agent starts", "file": "features/agent_started.feature",
             "description": ["In order to know my request was taken up", "As a user of an AI chat product",
                             "I want the start announced quickly"]}
FEATURE_B = {"name": "Security", "file": "features/security.feature", "description": ["In order to keep secrets"]}


def record(plan: str, status: str = "passed", *, feature: dict[str, Any] = FEATURE_A, name: str | None = None,
           **extra: Any) -> dict[str, Any]:
    return {"process": "shard-0", "feature": feature, "name": name or f"Scenario of {plan}", "plan": plan,
            "outline": None, "tags": [plan], "location": f"{feature['file']}:{int(plan[1:]) * 10}",
            "description": [f"Why {plan} matters."], "status": status, "skip_reason": None, "duration_s": 0.25,
            "figures": [], "error": None, "steps": [], **extra}


def outline_rows(plan: str, statuses: list[str], *, outline: str = "The <event> notice arrives") -> list[dict]:
    return [record(plan, status, outline=outline, name=f"The row{i} notice arrives -- @1.{i} events",
                   location=f"features/agent_started.feature:{40 + i}")
            for i, status in enumerate(statuses, start=1)]


class VisibleText(HTMLParser):
    """Text a reader sees without expanding anything: all but style, title and the body of <details>."""

    def __init__(self) -> None:
        super().__init__()
        self.shown: list[str] = []
        self.collapsed: list[str] = []
        self.stack: list[str] = []

    INLINE = frozenset({"span", "b", "a", "strong", "em", "code"})

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.INLINE:
            self.handle_data(" ")
        if tag not in ("br", "meta", "img", "link"):
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop() == tag:
                break
        if tag not in self.INLINE:
            self.handle_data(" ")

    def handle_data(self, data: str) -> None:
        if {"style", "title"} & set(self.stack):
            return
        hidden = "details" in self.stack and self.stack[-1] != "summary" and "summary" not in self.stack
        (self.collapsed if hidden else self.shown).append(data)

    @classmethod
    def of(cls, html: str) -> tuple[str, str]:
        parser = cls()
        parser.feed(html)
        return " ".join("".join(parser.shown).split()), " ".join("".join(parser.collapsed).split())


def render(tmp_path: pathlib.Path, records: list[dict], **kwargs: Any) -> str:
    return render_report(records, tmp_path / "out" / "specification.html", **kwargs).read_text(encoding="utf-8")


def test_a_plan_holds_fails_or_is_not_checked() -> None:
    assert plan_outcome([record("T001")]) == HOLDS
    assert plan_outcome([record("T001"), record("T001", "failed")]) == FAILS
    assert plan_outcome([record("T001", "error")]) == FAILS
    assert plan_outcome([record("T001", "undefined")]) == FAILS, "a status not known to be harmless fails"
    assert plan_outcome([record("T001", "skipped"), record("T001", "untested")]) == NOT_CHECKED
    assert plan_outcome([record("T001"), record("T001", "skipped")]) == NOT_CHECKED
    assert plan_outcome([record("T001", "skipped"), record("T001", "failed")]) == FAILS


def test_summarize_counts_per_feature_and_overall() -> None:
    records = [
        record("T003"), record("T001"), record("T002", "failed"), record("T004", "skipped"),
        *outline_rows("T005", ["passed", "passed", "passed"]),
        record("T101", feature=FEATURE_B), record("T102", "untested", feature=FEATURE_B),
        record("T103", "error", feature=FEATURE_B),
    ]
    summary = summarize(records)
    assert summary.records == 10
    assert summary.counts == Counts(hold=4, fail=2, not_checked=2)
    assert summary.counts.total == 8
    assert [f.name for f in summary.features] == ["The agent starts", "Security"]
    assert summary.features[0].counts == Counts(hold=3, fail=1, not_checked=1)
    assert summary.features[1].counts == Counts(hold=1, fail=1, not_checked=1)
    assert [p.plan for p in summary.features[0].plans] == ["T001", "T002", "T003", "T004", "T005"]
    assert summary.as_dict()["counts"] == {"total": 8, "hold": 4, "fail": 2, "not_checked": 2}
    assert summary.as_dict()["plans"][FAILS] == ["T002", "T103"]


def test_features_come_in_plan_order_whatever_order_the_shards_wrote() -> None:
    records = [record("T101", feature=FEATURE_B), record("T002"), record("T001")]
    assert [f.name for f in summarize(records).features] == ["The agent starts", "Security"]


def test_outline_rows_are_one_promise_named_by_the_outline() -> None:
    rows = outline_rows("T005", ["passed", "failed", "skipped"])
    summary = summarize(list(reversed(rows)))
    (plan,) = summary.plans
    assert plan.title == "The <event> notice arrives"
    assert plan.outcome == FAILS
    assert [r["name"] for r in plan.records] == [r["name"] for r in rows], "rows are in file order"
    assert plan.not_run == 1


def test_the_sentence_reads_as_english() -> None:
    assert Counts(118, 1, 1).sentence == "118 of 120 promises hold, 1 fails, 1 not checked"
    assert Counts(1, 0, 0).sentence == "1 of 1 promise holds, 0 fail, 0 not checked"
    assert Counts(0, 2, 3).sentence == "0 of 5 promises hold, 2 fail, 3 not checked"


def test_the_summary_and_problems_come_first(tmp_path: pathlib.Path) -> None:
    records = [record("T001"), record("T002", "failed", error="AssertionError: late")]
    html = render(tmp_path, records, problems=["shard-1 exited with 1 and wrote no JUnit"],
                  meta={"target": "native stack", "command": "agentevents spec --workers 3"})
    shown, _ = VisibleText.of(html)
    assert shown.count("1 of 2 promises holds, 1 fails, 0 not checked") == 2, "in the headline and the feature's line"
    assert shown.index("shard-1 exited with 1 and wrote no JUnit") < shown.index("1 of 2 promises holds")
    assert shown.index("1 of 2 promises holds") < shown.index("Scenario of T001")
    assert "native stack" in shown and "agentevents spec --workers 3" in shown
    assert "In order to know my request was taken up" in shown
    assert "Problems with this run" not in VisibleText.of(render(tmp_path, records))[0]


def test_business_value_figures_reasons_and_first_error_are_shown_at_once(tmp_path: pathlib.Path) -> None:
    records = [
        record("T001", figures=["agent_started 8.2 ms after the request — limit 500 ms"]),
        record("T002", "skipped", skip_reason="needs fault_control: kills a gateway mid-run"),
        record("T003", "untested"),
        record("T004", "failed", error="AssertionError: expected within 500 ms\n  File \"steps.py\", line 3"),
    ]
    shown, collapsed = VisibleText.of(render(tmp_path, records))
    assert "Why T001 matters." in shown
    assert "agent_started 8.2 ms after the request — limit 500 ms" in shown
    assert "Not checked: needs fault_control: kills a gateway mid-run" in shown
    assert "Not checked: no reason recorded" in shown
    assert "What went wrong: AssertionError: expected within 500 ms" in shown
    assert 'File "steps.py", line 3' not in shown
    assert 'File "steps.py", line 3' in collapsed
    for word in ("Holds", "Fails", "Not checked"):
        assert word in shown


def test_developer_detail_is_collapsed(tmp_path: pathlib.Path) -> None:
    steps = [{"keyword": "Given", "name": "Alice is connected", "status": "passed", "duration_s": 0.01,
              "location": "features/steps/sessions.py:12", "error": None}]
    html = render(tmp_path, [record("T001", steps=steps, process="shard-2", tags=["T001", "timing"])])
    shown, collapsed = VisibleText.of(html)
    assert "<details open" not in html
    for text in ("Alice is connected", "features/steps/sessions.py:12", "@timing", "features/agent_started.feature:10",
                 "250 ms", "10 ms"):
        assert text in collapsed
        assert text not in shown
    assert "Developer detail" in shown


def test_outline_rows_are_listed_under_one_promise(tmp_path: pathlib.Path) -> None:
    rows = outline_rows("T005", ["passed", "skipped"])
    rows[1]["skip_reason"] = "needs netem"
    rows[0]["figures"] = ["row1 after 9 ms"]
    html = render(tmp_path, rows)
    shown, _ = VisibleText.of(html)
    assert html.count('<article class="plan') == 1
    assert "The &lt;event&gt; notice arrives" in html
    assert "The row1 notice arrives -- @1.1 events" in shown
    assert "The row2 notice arrives -- @1.2 events" in shown
    assert "Not checked (1 of 2 examples did not run): needs netem" in shown
    assert "row1 after 9 ms" in shown


def test_outline_rows_are_told_apart_by_their_example_values(tmp_path: pathlib.Path) -> None:
    rows = outline_rows("T007", ["passed", "failed"])
    rows[0]["example"] = {"pass": "forged", "code": "401"}
    rows[1]["example"] = {"pass": "<expired>", "code": "401"}
    html = render(tmp_path, rows)
    shown, _ = VisibleText.of(html)
    assert "forged · 401" in shown
    assert "&lt;expired&gt; · 401" in html
    assert "-- @1.1" not in shown


def test_markup_in_the_records_is_escaped(tmp_path: pathlib.Path) -> None:
    evil = '<script>alert("x")</script>'
    records = [record("T001", name=f"Title {evil}", figures=[f"figure {evil}"], feature={**FEATURE_A, "name": evil},
                      steps=[{"keyword": "Given", "name": evil, "status": "failed", "error": evil}],
                      status="failed", error=evil)]
    html = render(tmp_path, records, problems=[evil], meta={evil: evil})
    assert "<script" not in html
    assert html.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") >= 8
    shown, _ = VisibleText.of(html)
    assert f"Title {evil}" in shown


def test_the_file_stands_alone(tmp_path: pathlib.Path) -> None:
    html = render(tmp_path, [record("T001"), *outline_rows("T002", ["passed", "failed"])])
    assert html.startswith("<!doctype html>")
    assert "<style>" in html
    for needle in ("http://", "https://", "<script", "<link", "<img", "@import", "url("):
        assert needle not in html
    assert len(html) < 20_000


def test_no_records_still_renders(tmp_path: pathlib.Path) -> None:
    shown, _ = VisibleText.of(render(tmp_path, [], problems=["no process wrote any record"]))
    assert "0 of 0 promises hold, 0 fail, 0 not checked" in shown
    assert "no process wrote any record" in shown


@pytest.mark.parametrize("missing", ["feature", "plan", "steps", "figures", "description", "duration_s"])
def test_records_with_missing_keys_render(tmp_path: pathlib.Path, missing: str) -> None:
    rec = record("T001", figures=["f"])
    del rec[missing]
    shown, _ = VisibleText.of(render(tmp_path, [rec]))
    assert "Scenario of T001" in shown


def coverage_row(html: str, plan: str) -> str:
    """The visible text of the coverage table's row of ``plan``."""
    start = html.index(f'<tr data-coverage-plan="{plan}">')
    return VisibleText.of(html[start:html.index("</tr>", start)])[0]


def test_the_coverage_lists_what_each_promise_needs_after_the_feature_summary(tmp_path: pathlib.Path) -> None:
    reason = "needs token_revocation: revokes a token while it is in use"
    rows = outline_rows("T002", ["passed", "skipped"])
    rows[0]["tags"] = ["T002", "conformance_agent", "security"]
    rows[1].update(tags=["T002", "conformance_agent", "security", "token_revocation"], skip_reason=reason)
    records = [record("T003", "failed", tags=["T003", "fault", "fault_control", "reference_agents"]),
               record("T001", tags=["T001", "timing"]), *rows]
    html = render(tmp_path, records)
    shown, collapsed = VisibleText.of(html)
    assert "Coverage: what each promise needs from the backend" in shown
    assert shown.index("I want the start announced quickly") < shown.index("Coverage: what each promise") \
        < shown.index("Why T001 matters."), "after the per-feature summary, before the promises"
    assert coverage_row(html, "T001") == "T001 Scenario of T001 protocol only ✔ Holds"
    assert coverage_row(html, "T002") == ("T002 The <event> notice arrives conformance_agent, token_revocation "
                                          "(1 of 2 examples) ○ Not checked")
    assert coverage_row(html, "T003") == "T003 Scenario of T003 reference_agents, fault_control ✘ Fails"
    assert html.index('data-coverage-plan="T001"') < html.index('data-coverage-plan="T002"') \
        < html.index('data-coverage-plan="T003"'), "in plan order"
    assert "conformance_agent, token_revocation (1 of 2 examples)" in shown
    assert "conformance_agent, token_revocation" not in collapsed, "the needs are shown at once, not collapsed"


def test_no_records_show_no_coverage_table(tmp_path: pathlib.Path) -> None:
    assert "data-coverage" not in render(tmp_path, [])
