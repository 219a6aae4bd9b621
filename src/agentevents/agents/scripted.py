"""The scripted (conformance) agent: follows the steps given in the request, so a specification
can produce every edge case exactly. Only tokens holding ``agents:script`` may start it.

docs/conformance.md is its normative definition (what every step kind emits, and in which order);
``schema/conformance/steps.json`` is the grammar of ``options.steps``. A steps list the schema
refuses is refused when the agent is created: the run's events are ``agent_error``
(``agent_init_failed``, the message names the step and the problem) and a ``failed``
``agent_completed``, with no ``agent_started``. ``options.fail_on_init`` makes creation fail the
same way on purpose.

Step kinds, each an object with that one action key: think, burst, tool, parallel, sleep, error,
fail, approval, partial, large_result, complete, repeat, rollback.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..auth import PERM_SCRIPT
from ..protocol.conformance import CONFORMANCE_VERSION, InvalidSteps, validate_steps
from .base import AgentContext, AgentFailure, AgentOutcome
from .registry import AgentFactoryError, AgentSpec

MAX_STEPS = 500  # the schema's maxItems


class ScriptedAgent:
    name = "scripted"
    description = "Follows the steps given in the request (needs the agents:script permission)"

    def __init__(self, options: dict[str, Any]) -> None:
        if options.get("fail_on_init"):
            raise AgentFactoryError(str(options.get("fail_on_init")))
        steps = options.get("steps", [])
        try:
            validate_steps(steps)
        except InvalidSteps as exc:
            raise AgentFactoryError(f"options.steps is invalid: {exc}") from None
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

__all__ = ["CONFORMANCE_VERSION", "MAX_STEPS", "SPEC", "ScriptedAgent"]
