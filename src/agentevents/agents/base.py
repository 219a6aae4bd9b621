"""What an agent sees while it runs, and what it returns."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..bus import Bus
from ..protocol import envelope as ev
from ..tools.dispatcher import ToolDispatcher, ToolOutcome
from ..worker.bridge import EventBridge, RunContext


class AgentFailure(Exception):
    """The agent cannot go on; the run ends ``failed`` with this code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class AgentOutcome:
    status: str = "completed"
    result: Any = None
    summary: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class AgentContext:
    def __init__(self, run: RunContext, bridge: EventBridge, tools: ToolDispatcher, bus: Bus,
                 preferences: dict[str, Any] | None = None) -> None:
        self.run = run
        self.bridge = bridge
        self.tools = tools
        self.bus = bus
        self.preferences = preferences or {}
        self.partial: Any = None       # what a timeout or cancel still delivers
        self.notes: list[str] = []     # a log of what was done, for the completion summary
        self.approvals: list[dict[str, Any]] = []
        self.context: dict[str, Any] = {}  # thread context: previous_runs, previous_run_id, iteration

    @property
    def message(self) -> str:
        return self.run.message

    @property
    def options(self) -> dict[str, Any]:
        return self.run.options

    async def think(self, reasoning: str, *, step: int | None = None, agent_name: str | None = None,
                    **metadata: Any) -> int | None:
        style = self.preferences.get("thinking_style")
        if style == "concise":
            reasoning = reasoning.split(". ")[0].rstrip(".") + "."
        if style:
            metadata.setdefault("style", style)
        return await self.bridge.thinking(reasoning, step=step, agent_name=agent_name, metadata=metadata)

    async def call_tool(self, name: str, params: dict[str, Any], **kwargs: Any) -> ToolOutcome:
        outcome = await self.tools.call(name, params, **kwargs)
        self.notes.append(f"{name}:{outcome.status}")
        return outcome

    async def error(self, code: str, message: str, *, recoverable: bool = True, **extra: Any) -> int:
        return await self.bridge.error(code, message, recoverable=recoverable, **extra)

    async def ask_approval(self, question: str, *, timeout_s: float = 60.0,
                           details: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Emit ``approval_required`` and wait for the user's ``respond`` (None on timeout)."""
        approval_id = "appr_" + uuid.uuid4().hex[:12]
        await self.bridge.emit(ev.APPROVAL_REQUIRED, {"approval_id": approval_id, "question": question,
                                                      "timeout_s": timeout_s, "details": details or {}})
        await self.bus.set_run_status(self.run.run_id, self.run.user_id, "waiting_approval")
        answer = await self.bus.wait_answer(self.run.run_id, approval_id, timeout_s)
        await self.bus.set_run_status(self.run.run_id, self.run.user_id, "running")
        self.approvals.append({"approval_id": approval_id, "question": question,
                               "approved": None if answer is None else bool(answer.get("approved"))})
        return answer


class Agent(Protocol):
    name: str
    description: str

    async def run(self, ctx: AgentContext) -> AgentOutcome: ...
