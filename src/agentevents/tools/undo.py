"""Compensation: undoes an earlier tool call of the same run (a rollback step)."""

from __future__ import annotations

from typing import Any

from .base import ToolContext, ToolResult


class UndoTool:
    name = "undo"
    description = "Rolls back the effect of an earlier tool call"
    category = "utility"
    permission = None
    timeout_s = 10.0
    completion_status = "rolled_back"
    parameters = {
        "type": "object",
        "properties": {"tool_call_id": {"type": "string", "minLength": 1},
                       "tool_name": {"type": "string"}, "reason": {"type": "string"}},
        "required": ["tool_call_id"],
        "additionalProperties": False,
    }

    async def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolResult:
        return ToolResult({"rolled_back": params["tool_call_id"], "tool_name": params.get("tool_name"),
                           "reason": params.get("reason", "")}, {"format": "json"})
