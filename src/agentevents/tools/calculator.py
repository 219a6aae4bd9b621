"""``calculator``: a safe arithmetic evaluator built on ``ast`` (never eval/exec)."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

from agentevents.tools.base import ToolContext, ToolError, ToolResult

Number = int | float

MAX_EXPRESSION_LENGTH = 500
MAX_EXPONENT = 1000
# Integers beyond this many bits are refused (also keeps results JSON/str-convertible).
MAX_INT_BITS = 4096

CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}

_BINARY_OPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY_OPS: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}


def _log(x: Number, base: Number | None = None) -> float:
    return math.log(x) if base is None else math.log(x, base)


def _round(x: Number, ndigits: int | None = None) -> Number:
    if ndigits is not None and (not isinstance(ndigits, int) or isinstance(ndigits, bool)):
        raise ToolError("invalid_expression", "round() digits must be an integer")
    return round(x) if ndigits is None else round(x, ndigits)


# name -> (function, min args, max args or None for unbounded)
FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int | None]] = {
    "sqrt": (math.sqrt, 1, 1),
    "abs": (abs, 1, 1),
    "round": (_round, 1, 2),
    "min": (lambda *args: min(args), 1, None),
    "max": (lambda *args: max(args), 1, None),
    "log": (_log, 1, 2),
    "sin": (math.sin, 1, 1),
    "cos": (math.cos, 1, 1),
    "tan": (math.tan, 1, 1),
}


def _invalid(message: str) -> ToolError:
    return ToolError("invalid_expression", message)


def parse_expression(expression: str, variables: frozenset[str] = frozenset()) -> ast.Expression:
    """Parse and structurally validate an expression; raise ToolError("invalid_expression")."""
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise _invalid(f"expression longer than {MAX_EXPRESSION_LENGTH} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise _invalid(f"cannot parse expression: {exc.__class__.__name__}") from None
    for node in ast.walk(tree):
        _check_node(node, variables)
    return tree


def _check_node(node: ast.AST, variables: frozenset[str]) -> None:
    if isinstance(node, ast.Expression | ast.Load) or type(node) in _BINARY_OPS or type(node) in _UNARY_OPS:
        return
    if isinstance(node, ast.BinOp | ast.UnaryOp):
        op = node.op
        if type(op) not in _BINARY_OPS and type(op) not in _UNARY_OPS:
            raise _invalid(f"operator {op.__class__.__name__} is not allowed")
        return
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise _invalid(f"literal {node.value!r} is not a number")
        return
    if isinstance(node, ast.Name):
        if node.id not in CONSTANTS and node.id not in FUNCTIONS and node.id not in variables:
            raise _invalid(f"unknown name {node.id!r}")
        return
    if isinstance(node, ast.Call):
        _check_call(node)
        return
    raise _invalid(f"{node.__class__.__name__} is not allowed in an expression")


def _check_call(node: ast.Call) -> None:
    if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
        raise _invalid("only the functions " + ", ".join(sorted(FUNCTIONS)) + " may be called")
    if node.keywords:
        raise _invalid("keyword arguments are not allowed")
    if any(isinstance(arg, ast.Starred) for arg in node.args):
        raise _invalid("argument unpacking is not allowed")
    _, low, high = FUNCTIONS[node.func.id]
    count = len(node.args)
    if count < low or (high is not None and count > high):
        expected = f"at least {low}" if high is None else f"{low} to {high}" if high != low else str(low)
        raise _invalid(f"{node.func.id}() takes {expected} argument(s), got {count}")


class _Evaluator:
    def __init__(self, variables: Mapping[str, Number]) -> None:
        self.names: dict[str, Number] = {**CONSTANTS, **variables}

    def eval(self, node: ast.AST) -> Number:
        if isinstance(node, ast.Expression):
            return self.eval(node.body)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in self.names:
                raise _invalid(f"{node.id!r} is a function, not a value")
            return self.names[node.id]
        if isinstance(node, ast.UnaryOp):
            return _check_size(_UNARY_OPS[type(node.op)](self.eval(node.operand)))
        if isinstance(node, ast.BinOp):
            return self._binary(node)
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            func = FUNCTIONS[node.func.id][0]
            return _check_size(func(*(self.eval(arg) for arg in node.args)))
        raise _invalid(f"{node.__class__.__name__} is not allowed in an expression")

    def _binary(self, node: ast.BinOp) -> Number:
        left, right = self.eval(node.left), self.eval(node.right)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        return _check_size(_BINARY_OPS[type(node.op)](left, right))


def _check_power(base: Number, exponent: Number) -> None:
    if abs(exponent) > MAX_EXPONENT:
        raise ToolError("math_error", f"exponent larger than {MAX_EXPONENT} is not allowed")
    exact = isinstance(base, int) and isinstance(exponent, int) and exponent > 0
    if exact and max(base.bit_length(), 1) * exponent > MAX_INT_BITS * 2:
        raise ToolError("math_error", "result too large")


def _check_size(value: Any) -> Number:
    if isinstance(value, complex):
        raise ToolError("math_error", "result is a complex number")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ToolError("math_error", "result too large")
    return value


def evaluate(expression: str, variables: Mapping[str, Number] | None = None) -> Number:
    """Evaluate an arithmetic expression safely; int when the result is integral.

    ``variables`` binds extra names (used by custom tools). Raises ToolError with code
    ``invalid_expression`` (bad syntax/name/function) or ``math_error`` (division by zero,
    domain errors, overflow, huge powers).
    """
    bound = dict(variables or {})
    for key, value in bound.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ToolError("invalid_expression", f"variable {key!r} is not a number")
    tree = parse_expression(expression, frozenset(bound))
    try:
        value = _Evaluator(bound).eval(tree)
    except ZeroDivisionError:
        raise ToolError("math_error", "division by zero") from None
    except OverflowError:
        raise ToolError("math_error", "numeric overflow") from None
    except (ValueError, TypeError) as exc:
        raise ToolError("math_error", f"math domain error: {exc}") from None
    except RecursionError:
        raise _invalid("expression nested too deeply") from None
    return normalize_number(value)


def normalize_number(value: Number) -> Number:
    """Integral floats (within exact float range) become int; inf/nan are refused."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ToolError("math_error", "result is not a finite number")
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
    return value


PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "expression": {"type": "string", "minLength": 1, "maxLength": MAX_EXPRESSION_LENGTH},
    },
    "required": ["expression"],
    "additionalProperties": False,
}


class CalculatorTool:
    version = "1.2.0"
    cacheable = True
    name = "calculator"
    description = (
        "Evaluate an arithmetic expression: numbers, + - * / // % **, parentheses, "
        "sqrt, abs, round, min, max, log, sin, cos, tan and the constants pi and e."
    )
    parameters: dict[str, Any] = PARAMETERS
    permission: str | None = None
    timeout_s = 10.0
    category = "math"

    async def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolResult:
        expression = params.get("expression")
        if not isinstance(expression, str) or not expression.strip():
            raise ToolError("invalid_expression", "expression must be a non-empty string")
        value = evaluate(expression)
        return ToolResult(result=value, metadata={"format": "number", "expression": expression})
