"""``wait``: sleep for a while (lets scripted agents produce slow tools and timeouts)."""

from __future__ import annotations

import asyncio
from typing import Any

from agentevents.tools.base import ToolContext, ToolError, ToolResult

MAX_SECONDS = 120


PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"seconds": {"type": "number", "minimum": 0, "maximum": MAX_SECONDS}},
    "required": ["seconds"],
    "additionalProperties": False,
}


class WaitTool:
    name = "wait"
    description = "Wait for the given number of seconds (0 to 120), then return."
    parameters: dict[str, Any] = PARAMETERS
    permission: str | None = None
    timeout_s = 10.0
    category = "utility"

    async def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolResult:
        seconds = params.get("seconds")
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not 0 <= seconds <= MAX_SECONDS
        ):
            raise ToolError("invalid_params", f"seconds must be a number between 0 and {MAX_SECONDS}")
        await asyncio.sleep(seconds)
        return ToolResult(result={"slept": seconds}, metadata={"format": "json"})
