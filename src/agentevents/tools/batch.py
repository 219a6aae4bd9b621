"""A batch job that reports partial results as it goes (``tool_progress`` events)."""

from __future__ import annotations

import asyncio
from typing import Any

from .base import ToolContext, ToolResult


class BatchJobTool:
    name = "batch_job"
    description = "Processes records in batches and reports each batch's partial result"
    category = "data"
    permission = None
    timeout_s = 30.0
    parameters = {
        "type": "object",
        "properties": {
            "batches": {"type": "integer", "minimum": 1, "maximum": 50},
            "rows_per_batch": {"type": "integer", "minimum": 1, "maximum": 10000},
            "delay_s": {"type": "number", "minimum": 0, "maximum": 5},
        },
        "required": ["batches"],
        "additionalProperties": False,
    }

    async def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolResult:
        batches = int(params["batches"])
        size = int(params.get("rows_per_batch", 100))
        done = 0
        for index in range(1, batches + 1):
            await asyncio.sleep(float(params.get("delay_s", 0.05)))
            done += size
            if ctx.report is not None:
                await ctx.report({"batch": index, "of": batches, "rows_done": done,
                                  "partial_result": {"rows": done}})
        return ToolResult({"rows": done, "batches": batches},
                          {"format": "json", "progress": [f"batch {i} of {batches}" for i in range(1, batches + 1)]})
