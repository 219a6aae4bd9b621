"""Small pure-Python table helpers shared by ``analyze_data`` and ``process_file``."""

from __future__ import annotations

import csv
import io
import math
import statistics
from dataclasses import dataclass
from typing import Any

Value = str | int | float | None


@dataclass
class Table:
    columns: list[str]
    rows: list[dict[str, Value]]

    def numeric_columns(self) -> list[str]:
        return [c for c in self.columns if is_numeric_column(self.rows, c)]


def _convert(raw: str) -> Value:
    text = raw.strip()
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return raw
    return number if math.isfinite(number) else raw


def parse_csv(text: str, *, max_rows: int | None = None, delimiter: str = ",") -> Table:
    """Parse CSV text with a header row; numeric-looking cells become int/float, blanks None."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        return Table(columns=[], rows=[])
    columns = [name.strip() or f"column_{i + 1}" for i, name in enumerate(header)]
    rows: list[dict[str, Value]] = []
    for record in reader:
        if not record or all(cell.strip() == "" for cell in record):
            continue
        rows.append({col: _convert(record[i]) if i < len(record) else None for i, col in enumerate(columns)})
        if max_rows is not None and len(rows) >= max_rows:
            break
    return Table(columns=columns, rows=rows)


def is_numeric_column(rows: list[dict[str, Value]], column: str) -> bool:
    values = [row.get(column) for row in rows]
    present = [v for v in values if v is not None]
    return bool(present) and all(isinstance(v, int | float) for v in present)


def numbers(rows: list[dict[str, Value]], column: str) -> list[float]:
    return [v for row in rows if isinstance(v := row.get(column), int | float)]


def tidy(value: float) -> int | float:
    """Round to 4 decimals; integral values become int."""
    rounded = round(value, 4)
    return int(rounded) if float(rounded).is_integer() else rounded


def numeric_stats(values: list[float]) -> dict[str, Any]:
    """count/mean/median/stdev/min/max/sum of a list of numbers (stdev None for fewer than 2)."""
    if not values:
        return {"count": 0, "mean": None, "median": None, "stdev": None, "min": None, "max": None, "sum": 0}
    stdev = tidy(statistics.stdev(values)) if len(values) > 1 else None
    return {
        "count": len(values),
        "mean": tidy(statistics.fmean(values)),
        "median": tidy(statistics.median(values)),
        "stdev": stdev,
        "min": tidy(min(values)),
        "max": tidy(max(values)),
        "sum": tidy(math.fsum(values)),
    }
