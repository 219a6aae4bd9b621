"""``echo``: return the ``value`` parameter unchanged."""

from __future__ import annotations

from typing import Any

from agentevents.tools.base import ToolContext, ToolError, ToolResult

PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"value": {}},
    "required": ["value"],
    "additionalProperties": False,
}


class EchoTool:
    name = "echo"
    description = "Return the given value (any JSON) unchanged."
    parameters: dict[str, Any] = PARAMETERS
    permission: str | None = None
    timeout_s = 10.0
    category = "utility"

    async def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolResult:
        if "value" not in params:
            raise ToolError("invalid_params", "value is required")
        return ToolResult(result=params["value"], metadata={"format": "json"})
