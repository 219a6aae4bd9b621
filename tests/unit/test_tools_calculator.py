"""calculator: safe AST evaluation, integral results, and refusal of anything but arithmetic."""

from __future__ import annotations

import asyncio
import math

import pytest

from agentevents.tools.base import ToolContext, ToolError
from agentevents.tools.calculator import CalculatorTool, evaluate

CTX = ToolContext(user_id="u1", thread_id="t1", run_id="r1")


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("12*(3+4)", 84),
        ("7/2", 3.5),
        ("8/2", 4),
        ("10//3", 3),
        ("10 % 3", 1),
        ("2**10", 1024),
        ("-3**2", -9),
        ("-(2+3)", -5),
        ("sqrt(16) + abs(-2)", 6),
        ("round(2.567, 2)", 2.57),
        ("max(1, 5, 3) - min(4, 2)", 3),
        ("log(8, 2)", 3),
        ("round(sin(pi/2) + cos(0) + tan(0), 6)", 2),
        ("round(e, 3)", 2.718),
    ],
)
def test_evaluates_arithmetic(expression: str, expected: float) -> None:
    assert evaluate(expression) == expected


def test_integral_results_are_int() -> None:
    assert type(evaluate("8/2")) is int
    assert type(evaluate("7/2")) is float


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('true')",
        "(1).real",
        "[1, 2]",
        "'a' * 3",
        "x + 1",
        "True + 1",
        "1 if 1 else 2",
        "2 ^ 3",
        "1 < 2",
        "lambda: 1",
        "sqrt(x=4)",
        "sqrt(1, 2)",
        "max()",
        "pi()",
        "sqrt + 1",
        "1 +",
        "",
        "1" * 501,
    ],
)
def test_rejects_non_arithmetic(expression: str) -> None:
    with pytest.raises(ToolError) as info:
        evaluate(expression)
    assert info.value.code == "invalid_expression"


@pytest.mark.parametrize(
    "expression",
    [
        "1/0",
        "5 // 0",
        "5 % 0",
        "0 ** -1",
        "2 ** 100000",
        "(10**999)**5",
        "sqrt(-1)",
        "log(0)",
        "(-8) ** 0.5",
        "10.0 ** 400",
        "1e308 * 10",
    ],
)
def test_math_errors(expression: str) -> None:
    with pytest.raises(ToolError) as info:
        evaluate(expression)
    assert info.value.code == "math_error"


def test_variables_are_bound_but_must_be_numbers() -> None:
    assert evaluate("a * 2 + b", {"a": 3, "b": 0.5}) == 6.5
    with pytest.raises(ToolError):
        evaluate("a + 1", {"a": "1"})  # type: ignore[dict-item]


def test_tool_run_returns_number_and_metadata() -> None:
    result = asyncio.run(CalculatorTool().run({"expression": "12*(3+4)"}, CTX))
    assert result.result == 84
    assert result.metadata == {"format": "number", "expression": "12*(3+4)"}


def test_tool_attributes() -> None:
    tool = CalculatorTool()
    assert (tool.name, tool.category, tool.permission, tool.timeout_s) == ("calculator", "math", None, 10.0)
    assert tool.parameters["properties"]["expression"]["maxLength"] == 500


def test_float_results_stay_precise() -> None:
    assert math.isclose(evaluate("2 ** 0.5"), math.sqrt(2))


def test_exponent_limit_applies_even_to_small_results() -> None:
    with pytest.raises(ToolError) as info:
        evaluate("1.0001 ** 5000")  # only ~1.65, but the exponent is over the limit
    assert info.value.code == "math_error"
    assert "exponent" in info.value.message
    assert evaluate("1 ** 1000") == 1
