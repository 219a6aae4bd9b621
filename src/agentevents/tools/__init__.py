"""Built-in tools and user-defined (custom) tools.

``builtin_tools()`` returns fresh instances keyed by name; ``custom_tool_from_definition()``
validates a user definition and builds a :class:`~agentevents.tools.custom.CustomTool`.
"""

from __future__ import annotations

from typing import Any

from agentevents.tools.analysis import AnalyzeDataTool
from agentevents.tools.base import Tool, ToolContext, ToolError, ToolResult
from agentevents.tools.batch import BatchJobTool
from agentevents.tools.calculator import CalculatorTool
from agentevents.tools.custom import CustomTool
from agentevents.tools.echo import EchoTool
from agentevents.tools.fail import FailTool
from agentevents.tools.files import ProcessFileTool
from agentevents.tools.finance import FinanceTool
from agentevents.tools.http_api import HttpApiTool
from agentevents.tools.search import SearchTool
from agentevents.tools.sleeper import WaitTool
from agentevents.tools.sql import SqlQueryTool
from agentevents.tools.undo import UndoTool

BUILTIN_TOOL_CLASSES: tuple[type, ...] = (
    CalculatorTool,
    SearchTool,
    AnalyzeDataTool,
    SqlQueryTool,
    ProcessFileTool,
    HttpApiTool,
    FinanceTool,
    WaitTool,
    EchoTool,
    FailTool,
    BatchJobTool,
    UndoTool,
)


def builtin_tools() -> dict[str, Tool]:
    """Fresh instances of every built-in tool, keyed by tool name."""
    tools: dict[str, Tool] = {}
    for cls in BUILTIN_TOOL_CLASSES:
        tool = cls()
        tools[tool.name] = tool
    return tools


def custom_tool_from_definition(defn: dict[str, Any]) -> Tool:
    """Build a user-defined tool; raises ToolError("invalid_tool_definition") for bad definitions."""
    return CustomTool.from_definition(defn)


__all__ = [
    "BUILTIN_TOOL_CLASSES",
    "CustomTool",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolResult",
    "builtin_tools",
    "custom_tool_from_definition",
]
