"""The execution engine: runs one agent for one run request, and always ends it with
``agent_completed`` (completed, partial, failed, timeout, cancelled or degraded)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

from ..agents.base import AgentContext, AgentFailure, AgentOutcome
from ..agents.registry import AgentFactoryError, AgentRegistry, UnknownAgent
from ..auth import has_permission
from ..bus import Bus
from ..config import Settings
from ..protocol.envelope import COMPLETION_STATUSES
from ..store import BatchWriter
from ..tools import builtin_tools, custom_tool_from_definition
from ..tools.base import ToolContext, ToolError
from ..tools.dispatcher import ToolCache, ToolDispatcher, ToolRateLimiter
from ..tools.sql import SqlSandbox
from . import policy
from .bridge import EventBridge, EventBudgetExceeded, RunContext, until_redis

log = logging.getLogger("agentevents.engine")

# Events one run may publish, by tier (an aggressive agent is stopped, as "degraded").
TIER_EVENT_BUDGET = {"free": 2000, "early": 5000, "mid": 10_000, "enterprise": 20_000}


def personalize_summary(summary: str, preferences: dict[str, Any]) -> str:
    """``summary_style: brief`` keeps the first sentence only."""
    if preferences.get("summary_style") == "brief" and summary:
        return summary.split(". ")[0].rstrip(".") + "."
    return summary


def completion_metrics(counts: dict[str, int], tool_calls: int, duration_ms: int) -> dict[str, Any]:
    """Business metrics of a run, counted from the events actually published before completion."""
    return {"event_counts": dict(sorted(counts.items())), "events_before_completion": sum(counts.values()),
            "tool_calls": tool_calls, "thinking_events": counts.get("agent_thinking", 0),
            "duration_ms": duration_ms}


def run_context(request: dict[str, Any]) -> RunContext:
    options = request.get("options") or {}
    files = options.get("files") or {}
    return RunContext(run_id=request["run_id"], thread_id=request["thread_id"], user_id=request["user_id"],
                      agent_type=request["agent_type"], message=request.get("message", ""), options=options,
                      permissions=frozenset(request.get("permissions") or ()), tier=request.get("tier", "free"),
                      requested_at=float(request.get("requested_at", time.time())),
                      files={str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {})


class ExecutionEngine:
    def __init__(self, bus: Bus, archive: BatchWriter | None, registry: AgentRegistry, settings: Settings,
                 *, worker_id: str, db: Any = None) -> None:
        self.bus = bus
        self.archive = archive
        self.registry = registry
        self.settings = settings
        self.worker_id = worker_id
        self.db = db  # the archive owner's pool: never handed to tools
        # sql_query's own pool, as its read-only role (connects when a query needs it).
        self.sql = SqlSandbox(settings.sql_database_url, owner_dsn=settings.database_url)
        self.limiter = ToolRateLimiter()
        self.cache = ToolCache()
        self.running: dict[str, asyncio.Task[AgentOutcome]] = {}
        self.cancelled: set[str] = set()

    async def close(self) -> None:
        await self.sql.close()

    def cancel(self, run_id: str) -> bool:
        task = self.running.get(run_id)
        if task is None:
            return False
        self.cancelled.add(run_id)
        task.cancel()
        return True

    def _record_run(self, run: RunContext, status: str, duration_ms: int | None = None) -> None:
        if self.archive is None:
            return
        now = datetime.now(UTC)
        created = datetime.fromtimestamp(run.requested_at, UTC)
        self.archive.add("threads", (run.thread_id, run.user_id, created))
        done = now if duration_ms is not None else None
        self.archive.add("runs", (run.run_id, run.thread_id, run.user_id, run.agent_type, status, self.worker_id,
                                  created, done, duration_ms))

    def _dispatcher(self, run: RunContext, bridge: EventBridge) -> ToolDispatcher:
        settings = policy.tool_settings(run.options, self.settings)
        ctx = ToolContext(user_id=run.user_id, thread_id=run.thread_id, run_id=run.run_id,
                          permissions=run.permissions, db=self.sql, files=run.files, settings=settings)
        dispatcher = ToolDispatcher(builtin_tools(), bridge, ctx, self.limiter, self.cache,
                                    max_timeout_s=self.settings.tool_timeout_max_s)
        for definition in run.options.get("custom_tools") or []:
            dispatcher.register(custom_tool_from_definition(definition))
        return dispatcher

    async def execute(self, request: dict[str, Any],
                      preferences: dict[str, Any] | Awaitable[dict[str, Any] | None] | None = None) -> str:
        """Run one request. ``preferences`` may be an awaitable: it is awaited only after
        agent_started is out, so a slow preference store never delays the user's first event."""
        run = run_context(request)
        budget = min(self.settings.max_events_per_run, TIER_EVENT_BUDGET.get(run.tier, 2000))
        bridge = EventBridge(self.bus, run, max_events=budget)
        try:
            return await self._execute(run, bridge, preferences)
        except BaseException:
            # Whatever ends the run here, what it already emitted goes out before anyone else
            # (the worker's failure handling) publishes its end.
            with contextlib.suppress(Exception):
                await bridge.drain()
            raise

    async def _execute(self, run: RunContext, bridge: EventBridge,
                       preferences: dict[str, Any] | Awaitable[dict[str, Any] | None] | None) -> str:
        started = time.monotonic()
        await self.bus.set_run_status(run.run_id, run.user_id, "running", self.worker_id)
        self._record_run(run, "running")
        log.info("run_start run_id=%s thread_id=%s user_id=%s agent=%s", run.run_id, run.thread_id,
                 run.user_id, run.agent_type)
        try:
            spec = self.registry.spec(run.agent_type)
            if spec.permission and not has_permission(run.permissions, spec.permission):
                raise AgentFactoryError(f"agent {run.agent_type!r} needs the {spec.permission!r} permission")
            policy.check_options(run.options)
            agent = self.registry.create(run.agent_type, run.options)
            tools = self._dispatcher(run, bridge)
        except (UnknownAgent, AgentFactoryError, ToolError, policy.OptionError) as exc:
            if inspect.iscoroutine(preferences):
                preferences.close()  # never needed: the run ends here
            return await self._refuse(run, bridge, exc, started)
        previous_runs, previous_run_id = await self.bus.record_run(run.thread_id, run.run_id)
        context = {"previous_runs": previous_runs, "previous_run_id": previous_run_id,
                   "iteration": previous_runs + 1}
        await bridge.started(description=spec.description, context=context)
        if inspect.isawaitable(preferences):
            preferences = await preferences
        prefs = {**(preferences or {}), **(run.options.get("preferences") or {})}
        ctx = AgentContext(run, bridge, tools, self.bus, preferences=prefs)
        ctx.context = context
        outcome = await self._supervise(run, bridge, ctx, agent)
        duration_ms = int((time.monotonic() - started) * 1000)
        extra = dict(outcome.extra)
        extra.setdefault("tool_calls", len(tools.calls))
        extra.setdefault("iteration", context["iteration"])
        extra.setdefault("metrics", completion_metrics(bridge.counts(), len(tools.calls), duration_ms))
        failed_tools = [c.error["code"] for c in tools.calls if c.error and c.status != "success"]
        if outcome.status == "completed" and (bridge.recoverable_errors or failed_tools):
            extra.setdefault("recovered_from", bridge.recoverable_errors + failed_tools)
        if ctx.approvals:
            extra.setdefault("approvals", ctx.approvals)
        if outcome.status not in COMPLETION_STATUSES:
            await bridge.error("invalid_status", f"the agent ended with unknown status {outcome.status!r}",
                               recoverable=False)
            extra["error"] = {"code": "invalid_status", "message": f"unknown status {outcome.status!r}"}
            outcome = AgentOutcome("failed", outcome.result, outcome.summary, outcome.extra)
        summary = outcome.summary
        if ctx.preferences:
            extra.setdefault("personalized_for", sorted(ctx.preferences))
            summary = personalize_summary(summary, ctx.preferences)
        # The run's slot is free before the user hears it ended, so an immediate next start fits.
        await self._finish(run, outcome.status, duration_ms)
        await bridge.completed(outcome.status, result=outcome.result, summary=summary,
                               duration_ms=duration_ms, **extra)
        return outcome.status

    async def _refuse(self, run: RunContext, bridge: EventBridge, exc: Exception, started: float) -> str:
        """The agent could not be created: an error event and a failed completion, no agent_started."""
        message = str(exc) if not isinstance(exc, UnknownAgent) else f"unknown agent {run.agent_type!r}"
        await bridge.error("agent_init_failed", message, recoverable=False)
        duration_ms = int((time.monotonic() - started) * 1000)
        await self._finish(run, "failed", duration_ms)
        await bridge.completed("failed", result=None, summary=f"The agent could not start: {message}",
                               duration_ms=duration_ms, error={"code": "agent_init_failed", "message": message})
        return "failed"

    async def _finish(self, run: RunContext, status: str, duration_ms: int) -> None:
        self._record_run(run, status, duration_ms)
        # Like agent_completed, which follows, the final status waits for Redis.
        await until_redis(lambda: self.bus.set_run_status(run.run_id, run.user_id, status, self.worker_id))
        log.info("run_end run_id=%s thread_id=%s user_id=%s status=%s duration_ms=%d", run.run_id,
                 run.thread_id, run.user_id, status, duration_ms)

    async def _supervise(self, run: RunContext, bridge: EventBridge, ctx: AgentContext, agent: Any) -> AgentOutcome:
        timeout_s = policy.run_time_limit(run.options, run.tier, self.settings)
        task = asyncio.create_task(agent.run(ctx), name=f"run-{run.run_id}")
        self.running[run.run_id] = task
        try:
            if await self.bus.cancel_requested(run.run_id):
                self.cancel(run.run_id)
            done, _ = await asyncio.wait({task}, timeout=timeout_s)
            if not done:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                return AgentOutcome("timeout", ctx.partial, f"The run hit its {timeout_s:g}s limit; "
                                    "partial results are included.", {"timeout_s": timeout_s})
            return task.result()
        except asyncio.CancelledError:
            if run.run_id in self.cancelled and not asyncio.current_task().cancelling():
                return AgentOutcome("cancelled", ctx.partial, "The run was cancelled by the user.")
            raise
        except AgentFailure as exc:
            await bridge.error(exc.code, exc.message, recoverable=False)
            return AgentOutcome("failed", ctx.partial, f"The run failed: {exc.message}",
                                {"error": {"code": exc.code, "message": exc.message}})
        except EventBudgetExceeded as exc:
            return AgentOutcome("degraded", ctx.partial, f"Stopped early: {exc}", {"limit": "max_events_per_run"})
        except Exception as exc:
            log.exception("run_crashed run_id=%s", run.run_id)
            await bridge.error("internal_error", f"{type(exc).__name__}", recoverable=False)
            return AgentOutcome("failed", ctx.partial, "The agent crashed.", {"error": {"code": "internal_error"}})
        finally:
            self.running.pop(run.run_id, None)
            self.cancelled.discard(run.run_id)
