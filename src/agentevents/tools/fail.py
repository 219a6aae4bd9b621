"""``fail``: always raise a ToolError with the requested code and message (for scripted failures)."""

from __future__ import annotations

from typing import Any

from agentevents.tools.base import ToolContext, ToolError, ToolResult

DEFAULT_CODE = "tool_failed"
DEFAULT_MESSAGE = "requested failure"


PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"},
        "message": {"type": "string", "maxLength": 500},
    },
    "additionalProperties": False,
}


class FailTool:
    name = "fail"
    description = "Fail on purpose with the given error code and message."
    parameters: dict[str, Any] = PARAMETERS
    permission: str | None = None
    timeout_s = 10.0
    category = "utility"

    async def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolResult:
        raise ToolError(params.get("code", DEFAULT_CODE), params.get("message", DEFAULT_MESSAGE))
