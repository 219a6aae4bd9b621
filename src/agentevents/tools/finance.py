"""``finance``: compound interest, loan payments, NPV and IRR (pure math, validated inputs).

Rates are annual decimal fractions (0.05 means 5 %). Cash flows start at t = 0.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

from agentevents.tools.base import ToolContext, ToolError, ToolResult

OPERATIONS = ("compound_interest", "loan_payment", "npv", "irr")
FORMULAS = {
    "compound_interest": "A = P * (1 + r/n)^(n*t)",
    "loan_payment": "PMT = P * i / (1 - (1 + i)^(-N)), i = r/n, N = n*t",
    "npv": "NPV = sum(CF_t / (1 + r)^t, t = 0..T)",
    "irr": "IRR = r such that sum(CF_t / (1 + r)^t) = 0",
}
REQUIRED = {
    "compound_interest": ["principal", "rate", "years"],
    "loan_payment": ["principal", "rate", "years"],
    "npv": ["rate", "cash_flows"],
    "irr": ["cash_flows"],
}
MAX_AMOUNT = 1e15
IRR_GRID = (
    -0.99,
    -0.9,
    -0.75,
    -0.5,
    -0.25,
    -0.1,
    0.0,
    0.05,
    0.1,
    0.2,
    0.35,
    0.5,
    0.75,
    1.0,
    2.0,
    5.0,
    10.0,
    100.0,
    1000.0,
)


def _param(params: dict[str, Any], key: str, low: float, high: float) -> float:
    value = params.get(key)
    if value is None:
        raise ToolError("missing_parameter", f"{params.get('operation')} needs {key!r}")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ToolError("invalid_params", f"{key} must be a finite number")
    if not low <= value <= high:
        raise ToolError("invalid_params", f"{key} must be between {low:g} and {high:g}")
    return float(value)


def _periods(params: dict[str, Any]) -> int:
    value = params.get("periods_per_year", 12)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 365:
        raise ToolError("invalid_params", "periods_per_year must be an integer between 1 and 365")
    return value


def _cash_flows(params: dict[str, Any]) -> list[float]:
    flows = params.get("cash_flows")
    if flows is None:
        raise ToolError("missing_parameter", f"{params.get('operation')} needs 'cash_flows'")
    if not isinstance(flows, list) or not 1 <= len(flows) <= 1000:
        raise ToolError("invalid_params", "cash_flows must be a list of 1 to 1000 numbers")
    for flow in flows:
        if isinstance(flow, bool) or not isinstance(flow, int | float) or not math.isfinite(flow):
            raise ToolError("invalid_params", "cash_flows must contain only finite numbers")
        if abs(flow) > MAX_AMOUNT:
            raise ToolError("invalid_params", f"cash flows must not exceed {MAX_AMOUNT:g} in size")
    return [float(f) for f in flows]


def compound_interest(principal: float, rate: float, years: float, periods_per_year: int = 12) -> float:
    """Future value of ``principal`` after ``years`` compounded ``periods_per_year`` times a year."""
    return principal * (1 + rate / periods_per_year) ** (periods_per_year * years)


def loan_payment(principal: float, rate: float, years: float, periods_per_year: int = 12) -> float:
    """Payment per period that amortises ``principal`` over ``years``."""
    periods = periods_per_year * years
    i = rate / periods_per_year
    if i == 0:
        return principal / periods
    return principal * i / (1 - (1 + i) ** -periods)


def npv(rate: float, cash_flows: list[float]) -> float:
    """Net present value; ``cash_flows[0]`` is at t = 0 (usually the negative investment)."""
    return math.fsum(flow / (1 + rate) ** t for t, flow in enumerate(cash_flows))


def _safe_npv(rate: float, flows: list[float]) -> float | None:
    try:
        return npv(rate, flows)
    except (OverflowError, ZeroDivisionError):
        return None


def _bisect(f: Callable[[float], float | None], low: float, high: float, f_low: float) -> float:
    for _ in range(200):
        mid = (low + high) / 2
        f_mid = f(mid)
        if f_mid is None or f_mid == 0:
            return mid
        if (f_mid > 0) == (f_low > 0):
            low, f_low = mid, f_mid
        else:
            high = mid
        if high - low < 1e-12:
            break
    return (low + high) / 2


def irr(cash_flows: list[float]) -> float:
    """Internal rate of return: the lowest bracketed root of NPV(r) = 0 on (-0.99, 1000]."""
    if not (any(f > 0 for f in cash_flows) and any(f < 0 for f in cash_flows)):
        raise ToolError("no_solution", "IRR needs at least one positive and one negative cash flow")
    values = [(r, _safe_npv(r, cash_flows)) for r in IRR_GRID]
    points = [(r, v) for r, v in values if v is not None]
    for (r1, v1), (r2, v2) in itertools.pairwise(points):
        if v1 == 0:
            return r1
        if (v1 > 0) != (v2 > 0):
            return _bisect(lambda r: _safe_npv(r, cash_flows), r1, r2, v1)
    raise ToolError("no_solution", "no internal rate of return found between -99% and 100000%")


def _compute(operation: str, params: dict[str, Any]) -> float:
    if operation in ("compound_interest", "loan_payment"):
        principal = _param(params, "principal", 0, MAX_AMOUNT)
        rate = _param(params, "rate", -0.99, 10)
        years = _param(params, "years", 1 / 365, 100)
        func = compound_interest if operation == "compound_interest" else loan_payment
        return func(principal, rate, years, _periods(params))
    if operation == "npv":
        return npv(_param(params, "rate", -0.99, 10), _cash_flows(params))
    return irr(_cash_flows(params))


PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "operation": {"type": "string", "enum": list(OPERATIONS)},
        "principal": {"type": "number", "minimum": 0, "maximum": MAX_AMOUNT},
        "rate": {"type": "number", "minimum": -0.99, "maximum": 10},
        "years": {"type": "number", "minimum": 1 / 365, "maximum": 100},
        "periods_per_year": {"type": "integer", "minimum": 1, "maximum": 365, "default": 12},
        "cash_flows": {"type": "array", "items": {"type": "number"}, "minItems": 1, "maxItems": 1000},
    },
    "required": ["operation"],
    "additionalProperties": False,
    "allOf": [
        {"if": {"properties": {"operation": {"const": op}}}, "then": {"required": fields}}
        for op, fields in REQUIRED.items()
    ],
}


class FinanceTool:
    version = "1.2.0"
    cacheable = True
    name = "finance"
    description = (
        "Financial math. operation: compound_interest or loan_payment (principal, rate, years, "
        "periods_per_year=12), npv (rate, cash_flows from t=0), irr (cash_flows). Rates are decimals: 0.05 = 5%."
    )
    parameters: dict[str, Any] = PARAMETERS
    permission: str | None = None
    timeout_s = 10.0
    category = "finance"

    async def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolResult:
        operation = params.get("operation")
        if operation not in OPERATIONS:
            raise ToolError("invalid_operation", f"operation must be one of {', '.join(OPERATIONS)}")
        try:
            value = _compute(operation, params)
        except (OverflowError, ZeroDivisionError):
            raise ToolError("math_error", "the inputs overflow the calculation") from None
        if not math.isfinite(value):
            raise ToolError("math_error", "the result is not a finite number")
        digits = 6 if operation == "irr" else 2
        metadata = {
            "domain": "finance",
            "format": "number",
            "formula": FORMULAS[operation],
            "operation": operation,
        }
        return ToolResult(result=round(value, digits), metadata=metadata)
