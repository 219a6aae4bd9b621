"""wait, echo and fail: the utility tools scripted agents use."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from agentevents.tools.base import ToolContext, ToolError
from agentevents.tools.echo import EchoTool
from agentevents.tools.fail import FailTool
from agentevents.tools.sleeper import WaitTool

CTX = ToolContext(user_id="u1", thread_id="t1", run_id="r1")


def test_wait_sleeps_and_reports() -> None:
    started = time.monotonic()
    result = asyncio.run(WaitTool().run({"seconds": 0.05}, CTX))
    assert time.monotonic() - started >= 0.05
    assert result.result == {"slept": 0.05}


def test_wait_can_be_cancelled_by_a_timeout() -> None:
    async def scenario() -> None:
        await asyncio.wait_for(WaitTool().run({"seconds": 5}, CTX), timeout=0.05)

    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(scenario())
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("seconds", [-1, 121, "1", True])
def test_wait_rejects_bad_seconds(seconds: Any) -> None:
    with pytest.raises(ToolError) as info:
        asyncio.run(WaitTool().run({"seconds": seconds}, CTX))
    assert info.value.code == "invalid_params"


@pytest.mark.parametrize("value", [None, 0, "text", [1, "a", None], {"nested": {"deep": [True]}}])
def test_echo_returns_value_unchanged(value: Any) -> None:
    result = asyncio.run(EchoTool().run({"value": value}, CTX))
    assert result.result == value
    assert result.metadata == {"format": "json"}


def test_fail_defaults() -> None:
    with pytest.raises(ToolError) as info:
        asyncio.run(FailTool().run({}, CTX))
    assert (info.value.code, info.value.message) == ("tool_failed", "requested failure")


def test_fail_custom_code_and_message() -> None:
    with pytest.raises(ToolError) as info:
        asyncio.run(FailTool().run({"code": "upstream_down", "message": "service X is down"}, CTX))
    assert (info.value.code, info.value.message) == ("upstream_down", "service X is down")


def test_attributes() -> None:
    assert (WaitTool.name, WaitTool.category, WaitTool.parameters["properties"]["seconds"]["maximum"]) == (
        "wait",
        "utility",
        120,
    )
    assert (EchoTool.name, FailTool.name) == ("echo", "fail")
