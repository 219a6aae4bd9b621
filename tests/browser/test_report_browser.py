"""The HTML report, read in a real headless Chromium as a product owner reads it: the summary, every
promise's title, business value, result and figures visible at once; developer detail collapsed."""

from __future__ import annotations

import copy
import pathlib
import struct

import pytest
from check_report import check_report, feature_titles, open_page, visible_text
from synthetic_run import META, OUTLINE_TITLE, PROBLEMS, SCRIPT_TITLE, SKIPPED, Synthetic, build

from agentevents.testing.report import render_report


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Synthetic:
    return build(tmp_path_factory.mktemp("report"))


def png_size(path: pathlib.Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_synthetic_report_passes_the_report_check(synthetic: Synthetic) -> None:
    assert len(feature_titles(synthetic.features_dir)) == 120
    shot = synthetic.report.with_name("specification.png")
    assert not shot.exists()
    assert check_report(synthetic.report, synthetic.records, synthetic.features_dir) == []
    width, height = png_size(shot)
    assert width >= 1000
    assert height > 5000, "the screenshot should hold the whole page, not only the viewport"


def test_the_summary_opens_the_page(synthetic: Synthetic) -> None:
    with open_page(synthetic.report) as opened:
        page = opened.page
        headline = page.locator('[data-summary="overall"]')
        assert " ".join(headline.inner_text().split()) == "110 of 120 promises hold, 3 fail, 7 not checked"
        problems = page.locator("[data-problems]")
        assert problems.is_visible()
        for problem in PROBLEMS:
            assert problem in problems.inner_text()
        assert problems.bounding_box()["y"] < headline.bounding_box()["y"]
        text = visible_text(page)
        for key, value in META.items():
            assert key in text and value in text
        failing = page.locator(".attention li").all_inner_texts()
        assert [item.split()[0] for item in failing] == ["T007", "T033", "T050"]
        assert page.locator("tr[data-feature]").count() == 8
        first = page.locator("tr[data-feature]").first
        assert "In order to know that my request was taken up" in first.inner_text()


def test_results_are_words_not_only_colours(synthetic: Synthetic) -> None:
    with open_page(synthetic.report) as opened:
        page = opened.page
        expected = {"T001": "Holds", "T007": "Fails", "T033": "Fails", "T050": "Fails", "T060": "Holds",
                    "T090": "Not checked", "T100": "Not checked", "T110": "Not checked"}
        for plan, word in expected.items():
            result = page.locator(f'article[data-plan="{plan}"] .plan-head .result')
            assert result.is_visible()
            assert word in result.inner_text(), plan


def test_figures_business_value_and_reasons_are_visible_without_expanding(synthetic: Synthetic) -> None:
    figures = [f for r in synthetic.records for f in r["figures"]]
    assert len(figures) > 30
    with open_page(synthetic.report) as opened:
        page = opened.page
        assert page.locator("details[open]").count() == 0
        items = page.locator("li.figure")
        assert items.count() == len(figures)
        for i in range(items.count()):
            assert items.nth(i).is_visible()
        text = visible_text(page)
        for figure in figures:
            assert figure in text
        for plan, reason in SKIPPED.items():
            assert reason in page.locator(f'article[data-plan="{plan}"]').inner_text()
        assert "no reason recorded" in page.locator('article[data-plan="T100"]').inner_text()
        assert "needs netem: reorders packets" in page.locator('article[data-plan="T110"]').inner_text()
        assert "Business value of T042: people resend or leave when this is late." in text
        t007 = page.locator('article[data-plan="T007"]').inner_text()
        assert "expected agent_started within 500 ms, got it after 1730 ms" in t007


def test_developer_detail_is_collapsed_until_opened(synthetic: Synthetic) -> None:
    with open_page(synthetic.report) as opened:
        page = opened.page
        article = page.locator('article[data-plan="T007"]')
        hidden = ["Alice receives what T007 promises", "features/steps/events.py:88", "step_receives_t007", "shard-1"]
        for text in hidden:
            assert text not in article.inner_text()
        article.locator("details > summary").click()
        for text in hidden:
            assert text in article.inner_text()
        assert article.locator("details pre").first.is_visible()


def test_outline_rows_are_one_promise(synthetic: Synthetic) -> None:
    with open_page(synthetic.report) as opened:
        page = opened.page
        article = page.locator('article[data-plan="T050"]')
        assert article.locator("h3").inner_text() == f"{OUTLINE_TITLE} (T050)"
        rows = article.locator("table.rows tr")
        assert rows.count() == 3
        assert [rows.nth(i).locator(".result").inner_text() for i in range(3)] == ["Passed", "Failed", "Passed"]
        assert page.locator("article.plan").count() == 120


def test_markup_in_a_title_is_shown_as_text_and_never_runs(synthetic: Synthetic) -> None:
    dialogs: list[str] = []
    with open_page(synthetic.report, javascript=True) as opened:
        page = opened.page
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.reload()
        assert page.locator('article[data-plan="T015"] h3').inner_text() == SCRIPT_TITLE
        assert page.locator("script").count() == 0
        assert page.evaluate("document.querySelectorAll('link, img, iframe, object, embed').length") == 0
    assert dialogs == []


def test_the_report_reads_in_print(synthetic: Synthetic) -> None:
    with open_page(synthetic.report) as opened:
        page = opened.page
        page.emulate_media(media="print")
        text = visible_text(page)
        assert "110 of 120 promises hold, 3 fail, 7 not checked" in text
        for record in synthetic.records:
            for figure in record["figures"]:
                assert figure in text
        assert "Alice receives what T007 promises" not in text


def test_the_check_reports_what_the_page_does_not_show(synthetic: Synthetic, tmp_path: pathlib.Path) -> None:
    records = copy.deepcopy(synthetic.records)
    t001 = next(r for r in records if r["plan"] == "T001")
    t001["status"] = "failed"
    t001["error"] = "AssertionError: made up"
    t003 = next(r for r in records if r["plan"] == "T003")
    t003["figures"].append("a figure the page never showed")
    features = tmp_path / "features"
    features.mkdir()
    for path in synthetic.features_dir.iterdir():
        (features / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    (features / "extra.feature").write_text(
        "Feature: Extra\n  @T121\n  Scenario: A promise nobody ran\n    Given nothing\n", encoding="utf-8")
    problems = check_report(synthetic.report, records, features, screenshot=tmp_path / "shot.png")
    joined = "\n".join(problems)
    assert "'A promise nobody ran'" in joined
    assert "overall count 'hold': the page shows 110, the records give 109" in joined
    assert "overall count 'fail': the page shows 3, the records give 4" in joined
    assert "T001: shown as 'holds', the records give 'fails'" in joined
    assert "figure not visible: 'a figure the page never showed'" in joined
    assert "AssertionError: made up" in joined
    assert (tmp_path / "shot.png").is_file()


def test_the_check_reports_a_request_for_anything_outside_the_file(tmp_path: pathlib.Path) -> None:
    report = render_report([], tmp_path / "specification.html")
    html = report.read_text(encoding="utf-8").replace("</body>", '<img src="http://127.0.0.1:9/pixel.png"></body>')
    report.write_text(html, encoding="utf-8")
    problems = check_report(report, [])
    assert problems == ["the report asked for something outside itself: http://127.0.0.1:9/pixel.png"]
