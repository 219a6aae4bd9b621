"""The scripted agent: follows a list of steps from the request, so a specification can produce
every edge case exactly. Only tokens holding ``agents:script`` may start it.

Steps (``options.steps``), each an object with one action key:
  {"think": "text", "metadata": {...}, "agent": "name"}      one thinking event
  {"burst": 50, "text": "step"}                               N thinking events, back to back
  {"tool": "calculator", "params": {...}, "timeout_s": 1, "agent": "name", "on_error": "continue"}
  {"parallel": [{"tool": ..., "params": ...}, ...]}           tools run concurrently
  {"sleep": 0.5}                                              wait (the run is alive, silent)
  {"error": {"code": "...", "message": "..."}}                a recoverable agent_error
  {"fail": "message"}                                         the run ends failed
  {"approval": "question", "timeout_s": 30}                   approval_required, wait for respond
  {"partial": value}                                          what a timeout/cancel still returns
  {"large_result": 100000}                                    final result of N characters
  {"complete": {"status": "partial", "result": ..., "summary": "...", "extra": {...}}}
  {"repeat": 100, "step": {...}}                              one step, N times
  {"tool": "finance", "params": {"principal": "$prev"}, "chain": true}
                                  "$prev" is the previous tool's result; both events name the call
                                  it continues (chained_from)
  {"rollback": "reason"}          undo every successful tool call so far, newest first
Options: ``fail_on_init`` (the factory fails: no agent_started, an error event instead).
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..auth import PERM_SCRIPT
from .base import AgentContext, AgentFailure, AgentOutcome
from .registry import AgentFactoryError, AgentSpec

MAX_STEPS = 500


class ScriptedAgent:
    name = "scripted"
    description = "Follows the steps given in the request (needs the agents:script permission)"

    def __init__(self, options: dict[str, Any]) -> None:
        if options.get("fail_on_init"):
            raise AgentFactoryError(str(options.get("fail_on_init")))
        steps = options.get("steps", [])
        if not isinstance(steps, list) or len(steps) > MAX_STEPS or not all(isinstance(s, dict) for s in steps):
            raise AgentFactoryError(f"options.steps must be a list of at most {MAX_STEPS} objects")
        self.steps: list[dict[str, Any]] = steps
        self.succeeded: list[tuple[str, str]] = []  # (tool_call_id, tool_name) of successful calls
        self.previous: tuple[str, Any] | None = None  # (tool_call_id, result) of the last call

    async def run(self, ctx: AgentContext) -> AgentOutcome:
        outcome = AgentOutcome(result={"steps": len(self.steps)}, summary=f"Ran {len(self.steps)} scripted steps.")
        for index, step in enumerate(self.steps, start=1):
            final = await self._step(ctx, index, step)
            if final is not None:
                outcome = final
                if "approval" in step:  # declined or unanswered: nothing that needed the approval runs
                    break
        return outcome

    async def _tool(self, ctx: AgentContext, step: dict[str, Any], agent: str | None) -> None:
        params = dict(step.get("params") or {})
        extra = dict(step.get("extra") or {})
        if step.get("chain") and self.previous is not None:
            params = {k: (self.previous[1] if v == "$prev" else v) for k, v in params.items()}
            extra["chained_from"] = self.previous[0]
        outcome = await ctx.call_tool(step["tool"], params, agent_name=agent, timeout_s=step.get("timeout_s"),
                                      purpose=step.get("purpose"), extra=extra or None)
        if outcome.ok:
            self.succeeded.append((outcome.tool_call_id, outcome.tool_name))
        self.previous = (outcome.tool_call_id, outcome.result)
        if not outcome.ok and step.get("on_error", "continue") == "fail":
            raise AgentFailure((outcome.error or {}).get("code", "tool_failed"),
                               (outcome.error or {}).get("message", "tool failed"))
        ctx.partial = {"last_tool": step["tool"], "result": outcome.result}

    async def _step(self, ctx: AgentContext, index: int, step: dict[str, Any]) -> AgentOutcome | None:
        agent = step.get("agent")
        if "think" in step:
            await ctx.think(str(step["think"]), agent_name=agent, **dict(step.get("metadata") or {}))
        elif "burst" in step:
            for i in range(int(step["burst"])):
                await ctx.think(f"{step.get('text', 'thinking')} {i + 1}", agent_name=agent, burst_index=i + 1)
        elif "repeat" in step:
            for _ in range(min(int(step["repeat"]), 10_000)):
                final = await self._step(ctx, index, step["step"])
                if final is not None:
                    return final
        elif "tool" in step:
            await self._tool(ctx, step, agent)
        elif "rollback" in step:
            for call_id, tool_name in reversed(self.succeeded):
                await ctx.call_tool("undo", {"tool_call_id": call_id, "tool_name": tool_name,
                                             "reason": str(step["rollback"])}, extra={"compensates": call_id})
            self.succeeded.clear()
        elif "parallel" in step:
            calls = [ctx.call_tool(c["tool"], dict(c.get("params") or {}), agent_name=c.get("agent"))
                     for c in step["parallel"]]
            await asyncio.gather(*calls)
        elif "sleep" in step:
            await asyncio.sleep(float(step["sleep"]))
        elif "error" in step:
            err = step["error"] if isinstance(step["error"], dict) else {"message": str(step["error"])}
            await ctx.error(err.get("code", "step_error"), err.get("message", "scripted error"), recoverable=True)
        elif "fail" in step:
            raise AgentFailure("scripted_failure", str(step["fail"]))
        elif "approval" in step:
            answer = await ctx.ask_approval(str(step["approval"]), timeout_s=float(step.get("timeout_s", 60)))
            if answer is None:
                return AgentOutcome(status="partial", result={"approved": None},
                                    summary="No answer to the approval request in time.")
            if not answer.get("approved"):
                return AgentOutcome(status="cancelled", result={"approved": False},
                                    summary="The user declined the approval request.",
                                    extra={"comment": answer.get("comment")})
            ctx.partial = {"approved": True, "comment": answer.get("comment")}
        elif "partial" in step:
            ctx.partial = step["partial"]
        elif "large_result" in step:
            return AgentOutcome(result="x" * int(step["large_result"]), summary="Large result.")
        elif "complete" in step:
            spec = step["complete"]
            return AgentOutcome(status=spec.get("status", "completed"), result=spec.get("result"),
                                summary=spec.get("summary", ""), extra=dict(spec.get("extra") or {}))
        else:
            raise AgentFailure("invalid_step", f"step {index} has no known action: {sorted(step)}")
        return None


SPEC = AgentSpec(name=ScriptedAgent.name, description=ScriptedAgent.description,
                 factory=ScriptedAgent, permission=PERM_SCRIPT)
