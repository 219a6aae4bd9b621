"""The tool dispatcher: wraps EVERY tool call with ``tool_executing`` and ``tool_completed``.

Agents never call a tool directly; they call ``ToolDispatcher.call``. Whatever happens —
unknown tool, invalid parameters, missing permission, rate limit, timeout, a crash inside the
tool — the user sees one ``tool_executing`` followed by exactly one ``tool_completed`` with the
same ``tool_call_id`` and a status.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from jsonschema import Draft202012Validator

from ..auth import has_permission
from ..protocol.limits import TokenBucket
from .base import Tool, ToolContext, ToolError, ToolResult

log = logging.getLogger("agentevents.tools")


class EventSink(Protocol):
    async def tool_executing(self, data: dict[str, Any], *, agent_name: str | None = None) -> int: ...
    async def tool_progress(self, data: dict[str, Any], *, agent_name: str | None = None) -> int: ...
    async def tool_completed(self, data: dict[str, Any], *, agent_name: str | None = None) -> int: ...


class ToolCache:
    """Results of cacheable tools, per (user, tool, parameters), bounded and with a TTL."""

    def __init__(self, size: int = 2048, ttl_s: float = 300.0) -> None:
        self.size, self.ttl_s = size, ttl_s
        self.entries: OrderedDict[tuple[str, str, bytes], tuple[float, Any, dict[str, Any]]] = OrderedDict()

    @staticmethod
    def key(user_id: str, tool: str, params: dict[str, Any]) -> tuple[str, str, bytes]:
        return user_id, tool, orjson.dumps(params, option=orjson.OPT_SORT_KEYS)

    def get(self, key: tuple[str, str, bytes], now: float) -> tuple[Any, dict[str, Any]] | None:
        hit = self.entries.get(key)
        if hit is None or now - hit[0] > self.ttl_s:
            return None
        self.entries.move_to_end(key)
        return hit[1], hit[2]

    def put(self, key: tuple[str, str, bytes], now: float, result: Any, metadata: dict[str, Any]) -> None:
        self.entries[key] = (now, result, metadata)
        self.entries.move_to_end(key)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)


@dataclass
class ToolOutcome:
    tool_call_id: str
    tool_name: str
    status: str  # success | error | timeout | permission_denied | invalid_parameters | rate_limited
    result: Any = None
    error: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.status in ("success", "rolled_back")


def _consume(task: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned tool task's outcome so it is never reported as unhandled."""
    if not task.cancelled():
        task.exception()


class ToolRateLimiter:
    """Per (user, tool) token buckets; shared by all runs in one worker.

    A bucket left alone long enough to refill is the same as a new one, so idle buckets are
    forgotten (at most once per refill time): the table holds only recently active pairs.
    """

    def __init__(self, rate: float = 5.0, burst: float = 10.0) -> None:
        self.rate, self.burst = rate, burst
        self.buckets: dict[tuple[str, str], TokenBucket] = {}
        self._swept = float("-inf")

    def check(self, user_id: str, tool: str, now: float) -> float | None:
        """None when allowed, else seconds to wait."""
        refill_s = self.burst / self.rate
        if now - self._swept >= refill_s:
            self._swept = now
            for key in [k for k, b in self.buckets.items() if now - b.updated >= refill_s]:
                del self.buckets[key]
        bucket = self.buckets.setdefault((user_id, tool), TokenBucket(self.rate, self.burst))
        return None if bucket.allow(now) else bucket.retry_after()


class ToolDispatcher:
    def __init__(self, tools: dict[str, Tool], sink: EventSink, ctx: ToolContext,
                 limiter: ToolRateLimiter | None = None, cache: ToolCache | None = None,
                 max_timeout_s: float | None = None) -> None:
        self.tools = dict(tools)
        # The server's ceiling of one call's time limit, whatever a caller asks for.
        self.max_timeout_s = max_timeout_s
        self.sink = sink
        self.ctx = ctx
        self.limiter = limiter
        self.cache = cache
        self.calls: list[ToolOutcome] = []
        self._versions: dict[tuple[str, bytes], int] = {}

    def register(self, tool: Tool) -> None:
        self.tools[tool.name] = tool

    async def call(self, name: str, params: dict[str, Any], *, agent_name: str | None = None,
                   purpose: str | None = None, timeout_s: float | None = None,
                   extra: dict[str, Any] | None = None) -> ToolOutcome:
        call_id = "call_" + uuid.uuid4().hex[:16]
        tool = self.tools.get(name)
        announced = {
            **(extra or {}),
            "tool_name": name, "tool_call_id": call_id, "parameters": params,
            "category": getattr(tool, "category", "unknown"),
            "description": getattr(tool, "description", ""),
            "purpose": purpose or getattr(tool, "description", ""),
        }
        await self.sink.tool_executing(announced, agent_name=agent_name)
        started = time.monotonic()
        watchdog = asyncio.create_task(self._watch_slow(tool, name, call_id, started, agent_name))
        try:
            outcome = await self._run(tool, name, call_id, params, timeout_s, agent_name)
        finally:
            # Not awaited: a cancellation of this run arriving during that await would be swallowed.
            watchdog.cancel()
        outcome.duration_ms = round((time.monotonic() - started) * 1000)
        version_key = (name, orjson.dumps(params, option=orjson.OPT_SORT_KEYS))
        self._versions[version_key] = self._versions.get(version_key, 0) + 1
        done: dict[str, Any] = {**(extra or {}), "tool_name": name, "tool_call_id": call_id,
                                "status": outcome.status, "result": outcome.result,
                                "duration_ms": outcome.duration_ms, "metadata": outcome.metadata,
                                "tool_version": getattr(tool, "version", "1.0.0"),
                                "result_version": self._versions[version_key]}
        if outcome.error:
            done["error"] = outcome.error
        await self.sink.tool_completed(done, agent_name=agent_name)
        self.calls.append(outcome)
        return outcome

    async def _watch_slow(self, tool: Tool | None, name: str, call_id: str, started: float,
                          agent_name: str | None) -> None:
        """Tell the user when a tool takes longer than it usually does."""
        if tool is None:
            return
        expected = float(getattr(tool, "expected_s", min(2.0, tool.timeout_s / 2)))
        # The event loop's timers have millisecond granularity and may fire a little early.
        while (left := started + expected - time.monotonic()) > 0:
            await asyncio.sleep(left + 0.001)
        await self.sink.tool_progress({"tool_name": name, "tool_call_id": call_id, "status": "slow",
                                       "elapsed_ms": int((time.monotonic() - started) * 1000),
                                       "expected_ms": int(expected * 1000),
                                       "message": f"{name} is taking longer than usual"}, agent_name=agent_name)

    async def _run(self, tool: Tool | None, name: str, call_id: str, params: dict[str, Any],
                   timeout_s: float | None, agent_name: str | None = None) -> ToolOutcome:
        def fail(status: str, code: str, message: str, **details: Any) -> ToolOutcome:
            return ToolOutcome(call_id, name, status, error={"code": code, "message": message, **details})

        if tool is None:
            return fail("error", "unknown_tool", f"no tool named {name!r}", available=sorted(self.tools))
        if tool.permission and not has_permission(self.ctx.permissions, tool.permission):
            return fail("permission_denied", "permission_denied",
                        f"tool {name!r} needs the {tool.permission!r} permission", required=tool.permission)
        errors = sorted(Draft202012Validator(tool.parameters).iter_errors(params), key=lambda e: list(e.path))
        if errors:
            where = "/".join(str(p) for p in errors[0].path) or "(parameters)"
            return fail("invalid_parameters", "invalid_parameters", f"{where}: {errors[0].message[:200]}")
        if self.limiter is not None:
            wait = self.limiter.check(self.ctx.user_id, name, time.monotonic())
            if wait is not None:
                return fail("rate_limited", "rate_limited", f"tool {name!r} is rate limited",
                            retry_after_ms=int(wait * 1000) + 1)
        cache_key = ToolCache.key(self.ctx.user_id, name, params)
        if self.cache is not None and getattr(tool, "cacheable", False):
            hit = self.cache.get(cache_key, time.monotonic())
            if hit is not None:
                return ToolOutcome(call_id, name, "success", result=hit[0], metadata={**hit[1], "cached": True})

        async def report(partial: dict[str, Any]) -> None:
            await self.sink.tool_progress({"tool_name": name, "tool_call_id": call_id, "status": "running",
                                           **partial}, agent_name=agent_name)

        ctx = dataclasses.replace(self.ctx, report=report)
        limit = timeout_s if timeout_s is not None else tool.timeout_s
        if self.max_timeout_s is not None:
            limit = min(limit, self.max_timeout_s)
        # The tool runs in its own task: at the deadline the user is told at once, even when the
        # tool is slow to stop (an asyncpg query to a stalled server waits for it to answer the
        # cancel); the abandoned task is cancelled and left to finish in the background.
        task = asyncio.ensure_future(tool.run(params, ctx))
        try:
            done, _ = await asyncio.wait({task}, timeout=limit)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not done:
            task.cancel()
            task.add_done_callback(_consume)
            return fail("timeout", "tool_timeout", f"tool {name!r} did not finish within {limit:g}s",
                        timeout_s=limit)
        try:
            result: ToolResult = task.result()
        except ToolError as exc:
            return fail("error", exc.code, exc.message, **exc.details)
        except Exception as exc:  # a tool bug must still end with tool_completed
            log.exception("tool_crashed tool=%s run_id=%s", name, self.ctx.run_id)
            return fail("error", "tool_crashed", f"{type(exc).__name__}: {exc}"[:300])
        schema = getattr(tool, "result_schema", None)
        if schema:
            problems = list(Draft202012Validator(schema).iter_errors(result.result))
            if problems:
                return fail("error", "invalid_result", f"the result failed validation: {problems[0].message[:200]}")
        metadata = dict(result.metadata)
        if self.cache is not None and getattr(tool, "cacheable", False):
            self.cache.put(cache_key, time.monotonic(), result.result, metadata)
            metadata["cached"] = False
        status = getattr(tool, "completion_status", "success")
        return ToolOutcome(call_id, name, status, result=result.result, metadata=metadata)
