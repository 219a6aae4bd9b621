"""finance: compound interest, loan payment, NPV and IRR."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agentevents.tools.base import ToolContext, ToolError, ToolResult
from agentevents.tools.finance import FORMULAS, FinanceTool, irr, npv

CTX = ToolContext(user_id="u1", thread_id="t1", run_id="r1")


def finance(**params: Any) -> ToolResult:
    return asyncio.run(FinanceTool().run(params, CTX))


def test_compound_interest() -> None:
    yearly = finance(operation="compound_interest", principal=1000, rate=0.05, years=10, periods_per_year=1)
    assert yearly.result == 1628.89
    monthly = finance(operation="compound_interest", principal=1000, rate=0.05, years=10)
    assert monthly.result == 1647.01
    assert monthly.metadata == {
        "domain": "finance",
        "format": "number",
        "formula": FORMULAS["compound_interest"],
        "operation": "compound_interest",
    }


def test_loan_payment() -> None:
    assert finance(operation="loan_payment", principal=200_000, rate=0.06, years=30).result == 1199.10
    assert finance(operation="loan_payment", principal=1200, rate=0, years=1).result == 100


def test_npv() -> None:
    assert finance(operation="npv", rate=0.1, cash_flows=[-1000, 500, 500, 500]).result == 243.43
    assert npv(0.0, [-10, 4, 6]) == 0


def test_irr() -> None:
    assert finance(operation="irr", cash_flows=[-100, 110]).result == 0.1
    assert finance(operation="irr", cash_flows=[-1000, 500, 500, 500]).result == pytest.approx(
        0.233752, abs=1e-6
    )
    rate = irr([-1000, 300, 400, 500])
    assert npv(rate, [-1000, 300, 400, 500]) == pytest.approx(0, abs=1e-6)


def test_irr_negative_rate() -> None:
    assert finance(operation="irr", cash_flows=[-100, 50]).result == -0.5


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"operation": "irr", "cash_flows": [100, 50]}, "no_solution"),
        ({"operation": "npv", "rate": 0.1}, "missing_parameter"),
        ({"operation": "loan_payment", "principal": 1000, "years": 1}, "missing_parameter"),
        ({"operation": "loan_payment", "principal": -5, "rate": 0.1, "years": 1}, "invalid_params"),
        ({"operation": "compound_interest", "principal": 1, "rate": True, "years": 1}, "invalid_params"),
        (
            {
                "operation": "compound_interest",
                "principal": 1,
                "rate": 0.1,
                "years": 1,
                "periods_per_year": 0,
            },
            "invalid_params",
        ),
        ({"operation": "npv", "rate": 0.1, "cash_flows": ["1"]}, "invalid_params"),
        (
            {
                "operation": "compound_interest",
                "principal": 1e15,
                "rate": 10,
                "years": 100,
                "periods_per_year": 365,
            },
            "math_error",
        ),
        ({"operation": "black_scholes"}, "invalid_operation"),
    ],
)
def test_validation(params: dict[str, Any], code: str) -> None:
    with pytest.raises(ToolError) as info:
        finance(**params)
    assert info.value.code == code


def test_schema_requires_inputs_per_operation() -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(FinanceTool.parameters)
    assert validator.is_valid({"operation": "irr", "cash_flows": [-1, 2]})
    assert not validator.is_valid({"operation": "npv", "cash_flows": [-1, 2]})
    assert not validator.is_valid({"operation": "loan_payment", "principal": 1, "rate": 0.1})
