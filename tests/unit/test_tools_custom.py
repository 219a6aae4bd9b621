"""Custom (user-defined) tools: definition validation, templates and expressions."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agentevents.tools import custom_tool_from_definition
from agentevents.tools.base import ToolContext, ToolError
from agentevents.tools.custom import CustomTool

CTX = ToolContext(user_id="u1", thread_id="t1", run_id="r1")

GREET: dict[str, Any] = {
    "name": "custom.greet",
    "description": "Greet someone",
    "parameters": {
        "type": "object",
        "properties": {"who": {"type": "string"}, "times": {"type": "integer", "default": 2}},
        "required": ["who"],
    },
    "template": "Hello {who}! x{times} {{braces}}",
}
BMI: dict[str, Any] = {
    "name": "custom.bmi",
    "description": "Body mass index",
    "parameters": {
        "type": "object",
        "properties": {"kg": {"type": "number"}, "m": {"type": "number"}},
        "required": ["kg", "m"],
    },
    "expression": "round({kg} / {m} ** 2, 1)",
}


def run(defn: dict[str, Any], params: dict[str, Any]) -> Any:
    return asyncio.run(custom_tool_from_definition(defn).run(params, CTX))


def test_template_tool() -> None:
    result = run(GREET, {"who": "Ada", "times": 3})
    assert result.result == "Hello Ada! x3 {braces}"
    assert result.metadata == {
        "custom": True,
        "owner": "user",
        "definition": "custom.greet",
        "format": "text",
    }


def test_template_uses_schema_default_for_missing_params() -> None:
    assert run(GREET, {"who": "Alan"}).result == "Hello Alan! x2 {braces}"


def test_template_renders_non_strings_as_json() -> None:
    defn = {**GREET, "template": "{who}", "parameters": {"type": "object", "properties": {"who": {}}}}
    assert run(defn, {"who": {"a": [1, True]}}).result == '{"a": [1, true]}'


def test_expression_tool() -> None:
    result = run(BMI, {"kg": 70, "m": 1.75})
    assert result.result == 22.9
    assert result.metadata["format"] == "number"
    assert result.metadata["definition"] == "custom.bmi"


def test_expression_errors_at_run_time() -> None:
    with pytest.raises(ToolError) as info:
        run(BMI, {"kg": 70, "m": 0})
    assert info.value.code == "math_error"
    with pytest.raises(ToolError) as info:
        run(BMI, {"kg": "70", "m": 2})
    assert info.value.code == "invalid_params"


def test_tool_attributes_and_round_trip() -> None:
    tool = CustomTool.from_definition(BMI)
    assert (tool.name, tool.category, tool.permission, tool.timeout_s) == ("custom.bmi", "custom", None, 5.0)
    assert tool.parameters == BMI["parameters"]
    assert tool.to_definition() == BMI


def test_result_schema_is_exposed_to_the_dispatcher() -> None:
    schema = {"type": "number", "minimum": 0}
    tool = CustomTool.from_definition({**BMI, "result_schema": schema})
    assert getattr(tool, "result_schema", None) == schema
    assert tool.to_definition() == {**BMI, "result_schema": schema}
    assert CustomTool.from_definition(BMI).result_schema is None


def test_dispatcher_checks_a_custom_result_schema() -> None:
    from agentevents.tools.dispatcher import ToolDispatcher

    class Sink:
        def __init__(self) -> None:
            self.events: list[tuple[str, dict[str, Any]]] = []

        async def tool_executing(self, data: dict[str, Any], *, agent_name: str | None = None) -> int:
            self.events.append(("tool_executing", data))
            return len(self.events)

        async def tool_progress(self, data: dict[str, Any], *, agent_name: str | None = None) -> int:
            self.events.append(("tool_progress", data))
            return len(self.events)

        async def tool_completed(self, data: dict[str, Any], *, agent_name: str | None = None) -> int:
            self.events.append(("tool_completed", data))
            return len(self.events)

    defn = {"name": "custom.discount", "description": "Price after a 10% discount",
            "parameters": {"type": "object", "properties": {"price": {"type": "number"}}, "required": ["price"]},
            "expression": "{price} * 0.9", "result_schema": {"type": "number", "minimum": 0}}
    tool = custom_tool_from_definition(defn)
    dispatcher = ToolDispatcher({tool.name: tool}, Sink(), CTX)
    good = asyncio.run(dispatcher.call("custom.discount", {"price": 100}))
    bad = asyncio.run(dispatcher.call("custom.discount", {"price": -50}))
    assert (good.status, good.result) == ("success", 90)
    assert bad.status == "error"
    assert bad.error is not None and bad.error["code"] == "invalid_result"


@pytest.mark.parametrize(
    "defn",
    [
        None,
        [],
        {},
        {**GREET, "name": "greet"},
        {**GREET, "name": "custom.Greet"},
        {**GREET, "name": "custom." + "a" * 41},
        {**GREET, "name": "custom.greet\n"},
        {**GREET, "description": ""},
        {**GREET, "description": "d" * 501},
        {**GREET, "parameters": {"type": "array"}},
        {**GREET, "parameters": None},
        {**GREET, "parameters": {"type": "object", "properties": {"who": {"type": "nope"}}}},
        {**GREET, "template": None},
        {**GREET, "expression": "1 + 1"},
        {**GREET, "template": "{who.__class__.__mro__}"},
        {**GREET, "template": "{who[0]}"},
        {**GREET, "template": "{who!r}"},
        {**GREET, "template": "{who:>1000000000}"},
        {**GREET, "template": "{unknown}"},
        {**GREET, "template": "{}"},
        {**GREET, "template": "{"},
        {**GREET, "template": "x" * 2001},
        {**BMI, "expression": "__import__('os')"},
        {**BMI, "expression": "{kg}{m}"},
        {**BMI, "expression": "{kg} +"},
        {**BMI, "expression": "{height} * 2"},
        {**GREET, "template": None, "expression": "{who} * 2"},  # who is a string parameter
        {**BMI, "result_schema": "number"},
        {**BMI, "result_schema": {"type": "nope"}},
    ],
)
def test_invalid_definitions(defn: Any) -> None:
    with pytest.raises(ToolError) as info:
        custom_tool_from_definition(defn)
    assert info.value.code == "invalid_tool_definition"
