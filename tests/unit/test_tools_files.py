"""process_file: CSV, JSON and text attachments."""

from __future__ import annotations

import asyncio

import pytest

from agentevents.tools.base import ToolContext, ToolError, ToolResult
from agentevents.tools.files import ProcessFileTool, detect_format

FILES = {
    "people.csv": "name,age,score\nAda,36,9.5\nAlan,41,8\n\nGrace,85,\n",
    "table.tsv": "city\tpop\nOslo, NO\t709000\n",
    "config.json": '{"name": "demo", "tags": ["a", "b"], "size": 3}',
    "items.json": '[{"id": 1}, {"id": 2, "x": true}, {"id": 3}]',
    "notes.txt": "The cat sat.\nThe cat ran; the dog sat!\nÉté is summer.\n",
    "broken.json": '{"a": ',
}
CTX = ToolContext(user_id="u1", thread_id="t1", run_id="r1", files=FILES)


def process(file: str, operation: str | None = None) -> ToolResult:
    params = {"file": file} if operation is None else {"file": file, "operation": operation}
    return asyncio.run(ProcessFileTool().run(params, CTX))


def test_csv_stats() -> None:
    result = process("people.csv")
    assert result.result["rows"] == 3
    assert result.result["columns"] == 3
    assert result.result["column_names"] == ["name", "age", "score"]
    assert set(result.result["numeric"]) == {"age", "score"}
    assert result.result["numeric"]["age"]["mean"] == 54
    assert result.result["numeric"]["score"]["count"] == 2
    assert result.metadata["format"] == "csv"
    assert result.metadata["bytes"] == len(FILES["people.csv"].encode())
    assert "parsed 3 rows x 3 columns" in result.metadata["progress"]


def test_csv_preview_and_parse() -> None:
    preview = process("people.csv", "preview").result
    assert preview["rows"][0] == ["Ada", 36, 9.5]
    parsed = process("people.csv", "parse").result
    assert parsed["rows"][2] == {"name": "Grace", "age": 85, "score": None}


def test_tsv_keeps_commas_inside_cells() -> None:
    parsed = process("table.tsv", "parse").result
    assert parsed["rows"] == [{"city": "Oslo, NO", "pop": 709000}]


def test_json_stats() -> None:
    obj = process("config.json").result
    assert obj == {"type": "object", "length": 3, "keys": ["name", "tags", "size"]}
    arr = process("items.json")
    assert arr.result == {"type": "array", "length": 3, "item_keys": ["id", "x"]}
    assert arr.metadata["format"] == "json"


def test_json_parse_and_preview() -> None:
    assert process("config.json", "parse").result["tags"] == ["a", "b"]
    assert process("items.json", "preview").result[1] == {"id": 2, "x": True}


def test_text_stats() -> None:
    result = process("notes.txt")
    assert result.result["lines"] == 3
    assert result.result["words"] == 12
    assert result.result["chars"] == len(FILES["notes.txt"])
    assert result.result["top_words"][:2] == [{"word": "cat", "count": 2}, {"word": "sat", "count": 2}]
    assert result.metadata["format"] == "text"
    assert result.metadata["bytes"] > result.result["chars"]  # "É" and "é" take two bytes


def test_text_preview() -> None:
    assert process("notes.txt", "preview").result == {
        "lines": ["The cat sat.", "The cat ran; the dog sat!", "Été is summer."],
        "truncated": False,
    }


def test_unknown_file() -> None:
    with pytest.raises(ToolError) as info:
        process("missing.csv")
    assert info.value.code == "file_not_found"
    assert "people.csv" in info.value.details["available"]


def test_invalid_json() -> None:
    with pytest.raises(ToolError) as info:
        process("broken.json")
    assert info.value.code == "invalid_file"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("a.csv", "x", "csv"),
        ("a.JSON", "{}", "json"),
        ("upload", '{"a": 1}', "json"),
        ("upload", "[not json", "text"),
        ("readme.md", "# title", "text"),
    ],
)
def test_detect_format(name: str, content: str, expected: str) -> None:
    assert detect_format(name, content) == expected
