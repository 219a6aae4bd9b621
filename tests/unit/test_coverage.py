"""The coverage matrix: rows read from feature files (scenario, feature and example tags; an outline
as one row), results from a run's records, the markdown it writes, and ``--check`` against the
committed docs/coverage.md."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from agentevents.testing.capabilities import CAPABILITIES
from agentevents.testing.coverage import (
    MATRIX_HEADER,
    NO_RESULT,
    PROTOCOL_ONLY,
    coverage_rows,
    main,
    render_markdown,
)

ROOT = Path(__file__).resolve().parents[2]

GATEWAYS = """\
@process_stats
Feature: Gateways: they give back what they used

  @T003 @serial @fault_control
  Scenario: A restarted gateway gives back its memory
    Given Alice is connected

  @T001
  Scenario: Visitors leave no trace
    Given Alice is connected

  Scenario: A scenario outside the plan
    Given Alice is connected
"""

SECURITY = """\
Feature: Security

  @T002 @security @conformance_agent
  Scenario Outline: Intruders are refused
    Given <someone> is connected

    Examples: Intruders
      | someone |
      | Mallory |
      | Eve     |

    @token_revocation
    Examples: A revoked token
      | someone |
      | Trudy   |

  @T004
  Scenario: Either this | or that
    Given Alice is connected
"""


@pytest.fixture
def features(tmp_path: Path) -> Path:
    folder = tmp_path / "features"
    folder.mkdir()
    (folder / "gateways.feature").write_text(GATEWAYS, encoding="utf-8")
    (folder / "security.feature").write_text(SECURITY, encoding="utf-8")
    return folder


def by_plan(rows) -> dict:
    return {row.plan: row for row in rows}


def test_rows_are_the_plan_tests_in_plan_order_with_what_they_need(features: Path) -> None:
    rows = coverage_rows(features)
    assert [row.plan for row in rows] == ["T001", "T002", "T003", "T004"]
    plans = by_plan(rows)
    assert plans["T001"].needs == ["process_stats"], "a feature's tag is needed by each of its scenarios"
    assert plans["T001"].feature == "Gateways: they give back what they used"
    assert plans["T001"].scenario == "Visitors leave no trace"
    assert plans["T003"].needs == ["fault_control", "process_stats"], "registry order; scheduling tags are no need"
    assert plans["T004"].needs == []
    assert all(row.result == NO_RESULT for row in rows)


def test_an_outline_is_one_row_needing_what_any_of_its_examples_needs(features: Path) -> None:
    outline = by_plan(coverage_rows(features))["T002"]
    assert outline.scenario == "Intruders are refused"
    assert outline.examples == 3
    assert outline.needs == ["conformance_agent", "token_revocation"]
    assert outline.needed_by("conformance_agent") == 3
    assert outline.needed_by("token_revocation") == 1


def test_results_come_from_the_records(features: Path) -> None:
    reason = "needs token_revocation: revokes a token while it is in use"
    records = [
        {"plan": "T001", "status": "passed", "skip_reason": None},
        {"plan": "T002", "status": "passed", "skip_reason": None},
        {"plan": "T002", "status": "passed", "skip_reason": None},
        {"plan": "T002", "status": "skipped", "skip_reason": reason},
        {"plan": "T003", "status": "passed", "skip_reason": None},
        {"plan": "T003", "status": "error", "skip_reason": None},
        {"plan": "T099", "status": "failed", "skip_reason": None},
        {"plan": None, "status": "failed", "skip_reason": None},
    ]
    plans = by_plan(coverage_rows(features, records))
    assert plans["T001"].result == "passed"
    assert plans["T002"].result == f"not checked (1 of 3 examples did not run): {reason}"
    assert plans["T003"].result == "failed"
    assert plans["T004"].result == "not checked: not in this run"
    assert "T099" not in plans, "a record of a plan test the features do not have adds no row"


def test_a_skip_without_a_reason_says_so(features: Path) -> None:
    plans = by_plan(coverage_rows(features, [{"plan": "T001", "status": "untested"}]))
    assert plans["T001"].result == "not checked: no reason recorded"


def matrix_lines(text: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index(MATRIX_HEADER)
    return [line for line in lines[start + 2:] if line.startswith("|")]


def test_the_markdown_has_a_title_how_to_regenerate_the_capabilities_and_the_matrix(features: Path) -> None:
    rows = coverage_rows(features, [{"plan": "T001", "status": "passed"}])
    text = render_markdown(rows, run_note="1 passed, 0 failed, 3 not checked (reports/specification.json).")
    lines = text.splitlines()
    assert lines[0].startswith("# Coverage")
    assert "python -m agentevents.testing.coverage" in lines[2]
    assert "Last run: 1 passed, 0 failed, 3 not checked (reports/specification.json)." in lines
    assert "1 of the 4 plan tests needs none" in text
    for capability, meaning in CAPABILITIES.items():
        count = sum(1 for row in rows if capability in row.needs)
        assert f"| `{capability}` | {count} | {meaning} |" in lines
    assert "| `process_stats` | 2 |" in text and "| `token_revocation` | 1 |" in text
    matrix = matrix_lines(text)
    assert [line.split(" | ")[0] for line in matrix] == ["| T001", "| T002", "| T003", "| T004"]
    assert matrix[0] == "| T001 | Gateways | Visitors leave no trace | `process_stats` | passed |"
    assert "`conformance_agent`, `token_revocation` (1 of 3 examples)" in matrix[1]
    assert matrix[3] == (f"| T004 | Security | Either this \\| or that | {PROTOCOL_ONLY} "
                         "| not checked: not in this run |")


def test_without_records_the_last_run_is_a_dash_and_no_run_is_named(features: Path) -> None:
    text = render_markdown(coverage_rows(features))
    assert "Last run: " not in text
    assert all(line.endswith(f"| {NO_RESULT} |") for line in matrix_lines(text))


def test_main_writes_what_render_markdown_gives(features: Path, tmp_path: Path) -> None:
    out = tmp_path / "docs" / "coverage.md"
    assert main(["--features", str(features), "--output", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == render_markdown(coverage_rows(features))


def test_the_committed_matrix_matches_the_features(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--features", str(ROOT / "features"), "--output", str(ROOT / "docs" / "coverage.md"), "--check"])
    assert code == 0, capsys.readouterr().err
    assert "matches the 120 plan tests" in capsys.readouterr().out


def test_the_check_fails_once_a_tag_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "features"
    shutil.copytree(ROOT / "features", copy, ignore=shutil.ignore_patterns("steps", "*.py", "__pycache__"))
    security = copy / "security.feature"
    text = security.read_text(encoding="utf-8")
    assert "@reference_agents @tls" in text
    security.write_text(text.replace("@reference_agents @tls", "@reference_agents"), encoding="utf-8")
    code = main(["--features", str(copy), "--output", str(ROOT / "docs" / "coverage.md"), "--check"])
    err = capsys.readouterr().err
    assert code == 1
    assert "differs from what" in err and "regenerate it with" in err
    assert len(err.strip().splitlines()) == 1


def test_the_check_ignores_the_last_run(features: Path, tmp_path: Path) -> None:
    out = tmp_path / "coverage.md"
    rows = coverage_rows(features, [{"plan": "T003", "status": "failed"}])
    out.write_text(render_markdown(rows, run_note="0 passed, 1 failed, 3 not checked (x.json)."), encoding="utf-8")
    assert main(["--features", str(features), "--output", str(out), "--check"]) == 0
    out.write_text(out.read_text(encoding="utf-8").replace("Visitors leave", "Visitors may leave"), encoding="utf-8")
    assert main(["--features", str(features), "--output", str(out), "--check"]) == 1


@pytest.mark.parametrize(("records", "expected"), [
    (None, "cannot read the records"),
    ("{not json", "is not valid JSON"),
    ('{"plan": "T001"}', "holds no list of records"),
])
def test_bad_records_are_one_line_and_exit_2(features: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             records: str | None, expected: str) -> None:
    path = tmp_path / "records.json"
    if records is not None:
        path.write_text(records, encoding="utf-8")
    code = main(["--features", str(features), "--records", str(path), "--output", str(tmp_path / "c.md")])
    err = capsys.readouterr().err
    assert code == 2
    assert expected in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "c.md").exists()


def test_records_as_json_lines_are_read_too(features: Path, tmp_path: Path) -> None:
    path = tmp_path / "specification.jsonl"
    path.write_text("\n".join(json.dumps({"plan": p, "status": "passed"}) for p in ("T001", "T003")) + "\n",
                    encoding="utf-8")
    out = tmp_path / "c.md"
    assert main(["--features", str(features), "--records", str(path), "--output", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "Last run: 2 passed, 0 failed, 2 not checked (specification.jsonl)." in text


def test_a_missing_features_folder_or_matrix_is_one_line(tmp_path: Path, features: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--features", str(tmp_path / "nowhere"), "--output", str(tmp_path / "c.md")]) == 2
    assert "no such folder of feature files" in capsys.readouterr().err
    assert main(["--features", str(features), "--output", str(tmp_path / "absent.md"), "--check"]) == 1
    err = capsys.readouterr().err
    assert "cannot read absent.md" in err and len(err.strip().splitlines()) == 1


def test_a_feature_file_that_does_not_parse_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "features"
    folder.mkdir()
    (folder / "broken.feature").write_text("Feature: Broken\n  @T001\n  Scenario: x\n    Given a\n  Nonsense here\n",
                                           encoding="utf-8")
    assert main(["--features", str(folder), "--output", str(tmp_path / "c.md")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("coverage: cannot parse") and len(err.strip().splitlines()) == 1
