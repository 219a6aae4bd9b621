"""``process_file``: stats, preview or parse of a file attached to the run (CSV, JSON or text)."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from agentevents.tools._table import numbers, numeric_stats, parse_csv
from agentevents.tools.base import ToolContext, ToolError, ToolResult

OPERATIONS = ("stats", "preview", "parse")
PREVIEW_ROWS = 5
PREVIEW_LINES = 10
MAX_PARSED_ROWS = 1000
TOP_WORDS = 10
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "has",
        "have",
        "he",
        "her",
        "his",
        "i",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "she",
        "that",
        "the",
        "their",
        "they",
        "this",
        "to",
        "was",
        "were",
        "will",
        "with",
        "you",
        "your",
    }
)


def detect_format(name: str, content: str) -> str:
    """csv | json | text, by extension first, then by sniffing JSON."""
    lower = name.lower()
    if lower.endswith((".csv", ".tsv")):
        return "csv"
    if lower.endswith(".json"):
        return "json"
    if content.lstrip()[:1] in ("{", "["):
        try:
            json.loads(content)
        except ValueError:
            return "text"
        return "json"
    return "text"


def _delimiter(name: str) -> str:
    return "\t" if name.lower().endswith(".tsv") else ","


def csv_result(name: str, content: str, operation: str, progress: list[str]) -> Any:
    limit = PREVIEW_ROWS if operation == "preview" else None
    table = parse_csv(content, max_rows=limit, delimiter=_delimiter(name))
    progress.append(f"parsed {len(table.rows)} rows x {len(table.columns)} columns")
    if operation == "preview":
        return {"columns": table.columns, "rows": [[r.get(c) for c in table.columns] for r in table.rows]}
    if operation == "parse":
        return {
            "columns": table.columns,
            "rows": table.rows[:MAX_PARSED_ROWS],
            "truncated": len(table.rows) > MAX_PARSED_ROWS,
        }
    numeric = table.numeric_columns()
    progress.append(f"computed statistics for {len(numeric)} numeric column(s)")
    return {
        "rows": len(table.rows),
        "columns": len(table.columns),
        "column_names": table.columns,
        "numeric": {c: numeric_stats(numbers(table.rows, c)) for c in numeric},
    }


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def json_result(content: str, operation: str, progress: list[str]) -> Any:
    try:
        value = json.loads(content)
    except ValueError as exc:
        raise ToolError("invalid_file", f"file is not valid JSON: {exc}") from None
    progress.append(f"parsed JSON {_json_type(value)}")
    if operation == "parse":
        return value
    if operation == "preview":
        if isinstance(value, list):
            return value[:PREVIEW_ROWS]
        if isinstance(value, dict):
            return {k: value[k] for k in list(value)[:PREVIEW_ROWS]}
        return value
    stats: dict[str, Any] = {"type": _json_type(value)}
    if isinstance(value, dict | list):
        stats["length"] = len(value)
    if isinstance(value, dict):
        stats["keys"] = list(value)
    elif isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        stats["item_keys"] = sorted({key for item in value for key in item})
    return stats


def text_result(content: str, operation: str, progress: list[str]) -> Any:
    lines = content.splitlines()
    progress.append(f"read {len(lines)} lines")
    if operation == "preview":
        return {"lines": lines[:PREVIEW_LINES], "truncated": len(lines) > PREVIEW_LINES}
    if operation == "parse":
        return {"lines": lines[:MAX_PARSED_ROWS], "truncated": len(lines) > MAX_PARSED_ROWS}
    words = [w.lower() for w in _WORD.findall(content)]
    counts = Counter(w for w in words if w not in _STOPWORDS)
    progress.append(f"counted {len(words)} words")
    return {
        "lines": len(lines),
        "words": len(words),
        "chars": len(content),
        "top_words": [
            {"word": w, "count": c}
            for w, c in sorted(counts.items(), key=lambda p: (-p[1], p[0]))[:TOP_WORDS]
        ],
    }


PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "file": {"type": "string", "minLength": 1, "maxLength": 255},
        "operation": {"type": "string", "enum": list(OPERATIONS), "default": "stats"},
    },
    "required": ["file"],
    "additionalProperties": False,
}


class ProcessFileTool:
    name = "process_file"
    description = (
        "Inspect a file attached to the request. operation: stats (default; CSV rows/columns/numeric "
        "stats, JSON type/keys/length, text lines/words/chars/top words), preview, or parse."
    )
    parameters: dict[str, Any] = PARAMETERS
    permission: str | None = None
    timeout_s = 10.0
    category = "files"

    async def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolResult:
        name = params.get("file", "")
        operation = params.get("operation", "stats")
        if operation not in OPERATIONS:
            raise ToolError("invalid_operation", f"operation must be one of {', '.join(OPERATIONS)}")
        if name not in ctx.files:
            raise ToolError(
                "file_not_found", f"no attached file named {name!r}", details={"available": sorted(ctx.files)}
            )
        content = ctx.files[name]
        size = len(content.encode("utf-8"))
        fmt = detect_format(name, content)
        progress = [f"read {name} ({size} bytes)", f"detected format {fmt}"]
        if fmt == "csv":
            result = csv_result(name, content, operation, progress)
        elif fmt == "json":
            result = json_result(content, operation, progress)
        else:
            result = text_result(content, operation, progress)
        metadata = {"format": fmt, "progress": progress, "bytes": size, "file": name, "operation": operation}
        return ToolResult(result=result, metadata=metadata)
