"""analyze_data: summary, groupby, correlation and top over the shipped CSV datasets."""

from __future__ import annotations

import asyncio
import csv
import io

import pytest

from agentevents.tools._data import read_data_text
from agentevents.tools.analysis import DATASETS, AnalyzeDataTool
from agentevents.tools.base import ToolContext, ToolError, ToolResult

CTX = ToolContext(user_id="u1", thread_id="t1", run_id="r1")


def analyze(**params: object) -> ToolResult:
    return asyncio.run(AnalyzeDataTool().run(dict(params), CTX))


def raw_rows(dataset: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(read_data_text(DATASETS[dataset].file))))


@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_datasets_ship_with_50_to_200_rows(dataset: str) -> None:
    assert 50 <= len(raw_rows(dataset)) <= 200


def test_schema_enumerates_shipped_datasets() -> None:
    assert AnalyzeDataTool.parameters["properties"]["dataset"]["enum"] == ["sales", "weather"]


def test_summary_covers_every_column() -> None:
    result = analyze(dataset="sales", operation="summary")
    table = result.result
    assert [row[0] for row in table["rows"]] == [
        "date",
        "region",
        "product",
        "units",
        "unit_price",
        "revenue",
    ]
    revenue = dict(zip(table["columns"], table["rows"][-1], strict=True))
    values = [float(r["revenue"]) for r in raw_rows("sales")]
    assert revenue["type"] == "number"
    assert revenue["count"] == len(values)
    assert revenue["max"] == max(values)
    assert revenue["mean"] == pytest.approx(sum(values) / len(values), abs=1e-3)
    region = dict(zip(table["columns"], table["rows"][1], strict=True))
    assert (region["type"], region["unique"]) == ("text", 4)


def test_metadata_has_format_progress_and_rows() -> None:
    result = analyze(dataset="weather", operation="summary", column="temp_c")
    assert result.metadata["format"] == "table"
    assert result.metadata["rows"] == len(raw_rows("weather"))
    assert result.metadata["progress"][0] == f"loaded {len(raw_rows('weather'))} rows from weather.csv"
    assert len(result.result["rows"]) == 1


def test_groupby_sums_match_raw_data() -> None:
    result = analyze(dataset="sales", operation="groupby", by="region", column="units")
    table = result.result
    assert table["columns"] == ["region", "count", "sum_units", "mean_units", "min_units", "max_units"]
    expected: dict[str, int] = {}
    for row in raw_rows("sales"):
        expected[row["region"]] = expected.get(row["region"], 0) + int(row["units"])
    assert {row[0]: row[2] for row in table["rows"]} == expected
    assert "grouped by region into 4 groups" in result.metadata["progress"]


def test_groupby_defaults_to_the_dataset_measure() -> None:
    result = analyze(dataset="weather", operation="groupby", by="city")
    assert result.result["columns"][2] == "sum_temp_c"
    assert [row[0] for row in result.result["rows"]] == sorted({r["city"] for r in raw_rows("weather")})


def test_groupby_needs_by() -> None:
    with pytest.raises(ToolError) as info:
        analyze(dataset="sales", operation="groupby")
    assert info.value.code == "missing_parameter"


def test_correlation_matrix_and_pair() -> None:
    matrix = analyze(dataset="weather", operation="correlation").result
    assert len(matrix["rows"]) == 6  # 4 numeric columns -> 6 pairs
    assert all(-1 <= row[2] <= 1 for row in matrix["rows"])
    pair = analyze(dataset="sales", operation="correlation", column="units", by="units").result
    assert pair["rows"] == [["units", "units", 1]]


def test_top_returns_largest_rows_in_order() -> None:
    result = analyze(dataset="sales", operation="top", column="units", n=3)
    units_index = result.result["columns"].index("units")
    got = [row[units_index] for row in result.result["rows"]]
    expected = sorted((int(r["units"]) for r in raw_rows("sales")), reverse=True)[:3]
    assert got == expected


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"dataset": "sales", "operation": "top", "column": "region"}, "invalid_column"),
        ({"dataset": "sales", "operation": "summary", "column": "nope"}, "invalid_column"),
        ({"dataset": "nope", "operation": "summary"}, "unknown_dataset"),
        ({"dataset": "sales", "operation": "pivot"}, "invalid_operation"),
    ],
)
def test_bad_requests(params: dict, code: str) -> None:
    with pytest.raises(ToolError) as info:
        analyze(**params)
    assert info.value.code == code
