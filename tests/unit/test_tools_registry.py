"""builtin_tools(): every built-in tool, with valid schemas and the documented attributes."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import jsonschema
import pytest

import agentevents.tools as tools_pkg
from agentevents.tools import builtin_tools

EXPECTED = {
    # name: (category, permission)
    "calculator": ("math", None),
    "search": ("search", None),
    "analyze_data": ("data", None),
    "sql_query": ("data", "tools:sql"),
    "process_file": ("files", None),
    "http_api": ("api", "tools:http"),
    "finance": ("finance", None),
    "wait": ("utility", None),
    "echo": ("utility", None),
    "fail": ("utility", None),
    "batch_job": ("data", None),
    "undo": ("utility", None),
}
# Tools whose timeout differs from the default 10 s.
TIMEOUTS = {"batch_job": 30.0}


def test_names_categories_and_permissions() -> None:
    tools = builtin_tools()
    assert {name: (t.category, t.permission) for name, t in tools.items()} == EXPECTED
    assert all(name == tool.name for name, tool in tools.items())


def test_fresh_instances_each_call() -> None:
    first, second = builtin_tools(), builtin_tools()
    assert all(first[name] is not second[name] for name in first)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_tool_protocol(name: str) -> None:
    tool = builtin_tools()[name]
    jsonschema.Draft202012Validator.check_schema(tool.parameters)
    assert tool.parameters["type"] == "object"
    assert tool.description.strip()
    assert tool.timeout_s == TIMEOUTS.get(name, 10.0)
    assert inspect.iscoroutinefunction(tool.run)


def test_no_eval_or_exec_in_tool_sources() -> None:
    package_dir = Path(tools_pkg.__file__).parent
    offenders = []
    for path in package_dir.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in {"eval", "exec"}
            ):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
