"""``analyze_data``: summaries, group-bys, correlations and top-n over shipped CSV datasets."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations
from typing import Any

from agentevents.tools._data import read_data_text
from agentevents.tools._table import Table, is_numeric_column, numbers, numeric_stats, parse_csv, tidy
from agentevents.tools.base import ToolContext, ToolError, ToolResult


@dataclass(frozen=True)
class Dataset:
    file: str
    default_column: str
    description: str


DATASETS: dict[str, Dataset] = {
    "sales": Dataset(
        "sales.csv", "revenue", "daily sales: date, region, product, units, unit_price, revenue"
    ),
    "weather": Dataset(
        "weather.csv", "temp_c", "daily weather: date, city, temp_c, humidity_pct, precipitation_mm, wind_kmh"
    ),
}
OPERATIONS = ("summary", "groupby", "correlation", "top")
DEFAULT_TOP_N = 5
MAX_TOP_N = 50


@lru_cache(maxsize=len(DATASETS))
def load_dataset(name: str) -> Table:
    """Parse a shipped dataset (cached; callers must not mutate the rows)."""
    if name not in DATASETS:
        raise ToolError(
            "unknown_dataset", f"unknown dataset {name!r}", details={"available": sorted(DATASETS)}
        )
    return parse_csv(read_data_text(DATASETS[name].file))


def _table(columns: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    return {"columns": columns, "rows": rows}


def _require_column(table: Table, column: str, *, numeric: bool) -> str:
    if column not in table.columns:
        raise ToolError("invalid_column", f"no column {column!r}", details={"columns": table.columns})
    if numeric and not is_numeric_column(table.rows, column):
        raise ToolError(
            "invalid_column",
            f"column {column!r} is not numeric",
            details={"numeric": table.numeric_columns()},
        )
    return column


def summarize(table: Table, column: str | None, progress: list[str]) -> dict[str, Any]:
    columns = [_require_column(table, column, numeric=False)] if column else table.columns
    header = ["column", "type", "count", "unique", "top", "mean", "median", "stdev", "min", "max"]
    rows = []
    for col in columns:
        values = [r[col] for r in table.rows if r.get(col) is not None]
        unique = len(set(values))
        if is_numeric_column(table.rows, col):
            s = numeric_stats(numbers(table.rows, col))
            rows.append(
                [
                    col,
                    "number",
                    s["count"],
                    unique,
                    None,
                    s["mean"],
                    s["median"],
                    s["stdev"],
                    s["min"],
                    s["max"],
                ]
            )
        else:
            top = Counter(values).most_common(1)[0][0] if values else None
            rows.append([col, "text", len(values), unique, top, None, None, None, None, None])
    progress.append(f"summarized {len(columns)} column(s)")
    return _table(header, rows)


def group_by(table: Table, by: str | None, column: str, progress: list[str]) -> dict[str, Any]:
    if not by:
        raise ToolError("missing_parameter", "groupby needs 'by' (the column to group on)")
    _require_column(table, by, numeric=False)
    _require_column(table, column, numeric=True)
    groups: dict[Any, list[float]] = defaultdict(list)
    for row in table.rows:
        value = row.get(column)
        if isinstance(value, int | float):
            groups[row.get(by)].append(value)
    progress.append(f"grouped by {by} into {len(groups)} groups")
    rows = []
    for key in sorted(groups, key=lambda k: (k is None, str(k))):
        s = numeric_stats(groups[key])
        rows.append([key, s["count"], s["sum"], s["mean"], s["min"], s["max"]])
    progress.append(f"aggregated {column}: count, sum, mean, min, max")
    return _table([by, "count", f"sum_{column}", f"mean_{column}", f"min_{column}", f"max_{column}"], rows)


def _pearson(table: Table, a: str, b: str) -> float | None:
    pairs = [
        (r[a], r[b])
        for r in table.rows
        if isinstance(r.get(a), int | float) and isinstance(r.get(b), int | float)
    ]
    if len(pairs) < 2:
        return None
    try:
        return tidy(statistics.correlation([p[0] for p in pairs], [p[1] for p in pairs]))
    except statistics.StatisticsError:  # a constant column has no correlation
        return None


def correlate(table: Table, column: str | None, other: str | None, progress: list[str]) -> dict[str, Any]:
    numeric = table.numeric_columns()
    if column and other:
        pairs = [(_require_column(table, column, numeric=True), _require_column(table, other, numeric=True))]
    elif column:
        _require_column(table, column, numeric=True)
        pairs = [(column, c) for c in numeric if c != column]
    else:
        pairs = list(combinations(numeric, 2))
    rows = [[a, b, _pearson(table, a, b)] for a, b in pairs]
    progress.append(f"computed Pearson correlation for {len(rows)} column pair(s)")
    return _table(["column_a", "column_b", "pearson_r"], rows)


def top_rows(table: Table, column: str, n: int, progress: list[str]) -> dict[str, Any]:
    _require_column(table, column, numeric=True)
    ranked = sorted(
        (r for r in table.rows if isinstance(r.get(column), int | float)), key=lambda r: -r[column]
    )[:n]
    progress.append(f"sorted by {column} descending, kept top {len(ranked)}")
    return _table(list(table.columns), [[r.get(c) for c in table.columns] for r in ranked])


PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "dataset": {"type": "string", "enum": sorted(DATASETS)},
        "operation": {"type": "string", "enum": list(OPERATIONS)},
        "column": {"type": "string", "minLength": 1, "maxLength": 64},
        "by": {"type": "string", "minLength": 1, "maxLength": 64},
        "n": {"type": "integer", "minimum": 1, "maximum": MAX_TOP_N, "default": DEFAULT_TOP_N},
    },
    "required": ["dataset", "operation"],
    "additionalProperties": False,
}


class AnalyzeDataTool:
    version = "1.2.0"
    cacheable = True
    name = "analyze_data"
    description = (
        "Analyze a shipped dataset (sales, weather). operation: summary (optional column), "
        "groupby (by + numeric column), correlation (all numeric pairs, or column vs by), "
        "top (n rows with the largest numeric column)."
    )
    parameters: dict[str, Any] = PARAMETERS
    permission: str | None = None
    timeout_s = 10.0
    category = "data"

    async def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolResult:
        name, operation = params.get("dataset", ""), params.get("operation", "")
        if operation not in OPERATIONS:
            raise ToolError("invalid_operation", f"operation must be one of {', '.join(OPERATIONS)}")
        table = load_dataset(name)
        progress = [f"loaded {len(table.rows)} rows from {DATASETS[name].file}"]
        column, by = params.get("column"), params.get("by")
        default_column = column or DATASETS[name].default_column
        if operation == "summary":
            result = summarize(table, column, progress)
        elif operation == "groupby":
            result = group_by(table, by, default_column, progress)
        elif operation == "correlation":
            result = correlate(table, column, by, progress)
        else:
            n = max(1, min(MAX_TOP_N, int(params.get("n", DEFAULT_TOP_N))))
            result = top_rows(table, default_column, n, progress)
        metadata = {
            "format": "table",
            "progress": progress,
            "rows": len(table.rows),
            "result_rows": len(result["rows"]),
            "dataset": name,
            "operation": operation,
        }
        return ToolResult(result=result, metadata=metadata)
