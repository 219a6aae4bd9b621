"""The event bridge: the ONE path from a running agent to its users.

Every event of a run passes here: it is redacted (PII), trimmed (size limits), throttled
(thinking), counted (per-run budget), enveloped, and published to Redis (seq assigned there,
and the event put in the archive outbox in the same step; see ``store/archiver.py``). If Redis
is unreachable the run pauses in ``emit`` and retries the same event (same event_id, so a
publish whose answer was lost is not doubled).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from redis.exceptions import RedisError

from ..bus import Bus
from ..protocol import envelope as ev
from ..protocol.limits import ThinkingThrottle, summarize_result, truncate_text
from ..protocol.redaction import redact
from ..publisher import ThreadPublisher

log = logging.getLogger("agentevents.bridge")

T = TypeVar("T")


async def until_redis(call: Callable[[], Awaitable[T]], stopping: asyncio.Event | None = None) -> T:
    """Run ``call`` until Redis answers it (backoff up to 1 s); gives up only once ``stopping`` is set."""
    backoff = 0.05
    while True:
        try:
            return await call()
        except (RedisError, OSError):
            if stopping is not None and stopping.is_set():
                raise
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 1.0)


class EventBudgetExceeded(Exception):
    """The run emitted more events than allowed; the engine ends it as ``degraded``."""


@dataclass
class RunContext:
    run_id: str
    thread_id: str
    user_id: str
    agent_type: str
    message: str
    options: dict[str, Any]
    permissions: frozenset[str]
    tier: str
    requested_at: float
    files: dict[str, str] = field(default_factory=dict)


class EventBridge:
    """Events leave in micro-batches through the run's ``ThreadPublisher``: ``emit`` queues the
    event and returns, and while one publish (and Redis's fsync) is in flight the next events
    gather for the following batch. The queue is bounded (``max_queue``): past it, ``emit``
    waits. ``agent_completed`` waits until every event of the run is published, and is retried
    for as long as Redis takes to come back."""

    def __init__(self, bus: Bus, run: RunContext, *,
                 max_events: int = 10_000, publish_deadline_s: float = 300.0,
                 thinking_rate: float = 20.0, thinking_burst: float = 50.0,
                 max_batch: int = 256, max_queue: int = 2_000) -> None:
        self.bus = bus
        self.run = run
        self.max_events = max_events
        self.throttle = ThinkingThrottle(rate=thinking_rate, burst=thinking_burst)
        self.count = 0
        self.redactions = 0
        self.emitted: list[str] = []
        self.recoverable_errors: list[str] = []
        self._step = 0
        # A run's end is never given up on: its agent_completed waits for Redis however long.
        self.out = ThreadPublisher(bus, f"{run.run_id}:{uuid.uuid4().hex[:8]}", max_batch=max_batch,
                                   max_queue=max_queue, deadline_s=publish_deadline_s,
                                   patient=lambda e: e["type"] == ev.AGENT_COMPLETED)

    async def emit(self, event_type: str, data: dict[str, Any], *, agent_name: str | None = None,
                   budget: bool = True) -> None:
        if event_type != ev.AGENT_THINKING:
            await self._flush_thinking()
        await self._publish(event_type, data, agent_name=agent_name, budget=budget)

    async def _publish(self, event_type: str, data: dict[str, Any], *, agent_name: str | None,
                       budget: bool) -> None:
        await self.out.room()
        if budget and self.count >= self.max_events:
            raise EventBudgetExceeded(f"run emitted {self.count} events; the limit is {self.max_events}")
        clean, n = redact(data)
        self.redactions += n
        if n:
            clean.setdefault("redactions", n)
        event = ev.build_event(event_type, thread_id=self.run.thread_id, run_id=self.run.run_id,
                               user_id=self.run.user_id, agent_name=agent_name or self.run.agent_type,
                               data=clean)
        self.out.add(event)
        self.count += 1
        self.emitted.append(event_type)
        if event_type == ev.AGENT_COMPLETED:
            await self.drain()
        else:
            # A point where the run yields: the flusher (and a cancel) get their turn even while
            # an agent emits in a tight loop.
            await asyncio.sleep(0)

    async def drain(self) -> None:
        """Return once every queued event is published (raises what stopped the publishing)."""
        await self.out.drain()

    # -- the five events --------------------------------------------------------------------
    async def started(self, *, agent_name: str | None = None, **extra: Any) -> None:
        data = {"agent_type": self.run.agent_type, "message_preview": self.run.message[:200], **extra}
        await self.emit(ev.AGENT_STARTED, data, agent_name=agent_name, budget=False)

    async def thinking(self, reasoning: str, *, step: int | None = None, agent_name: str | None = None,
                       metadata: dict[str, Any] | None = None) -> None:
        self._step = step if step is not None else self._step + 1
        released = self.throttle.offer(time.monotonic(), (reasoning, self._step, agent_name, metadata))
        if released is not None:
            await self._emit_thinking(*released)

    async def _flush_thinking(self) -> None:
        """Send what the throttle holds, under the agent and metadata it was reasoned with."""
        released = self.throttle.flush()
        if released is not None:
            await self._emit_thinking(*released)

    async def _emit_thinking(self, held: tuple[str, int, str | None, dict[str, Any] | None],
                             coalesced: int) -> None:
        text, step, agent_name, metadata = held
        shown, trunc = truncate_text(text)
        data: dict[str, Any] = {"reasoning": shown, "step": step, "metadata": dict(metadata or {})}
        if trunc["truncated"]:
            data.update(truncated=True, full_length=trunc["full_length"])
        if coalesced > 1:
            data["coalesced"] = coalesced
        await self._publish(ev.AGENT_THINKING, data, agent_name=agent_name, budget=True)

    async def tool_executing(self, data: dict[str, Any], *, agent_name: str | None = None) -> None:
        await self.emit(ev.TOOL_EXECUTING, data, agent_name=agent_name)

    async def tool_progress(self, data: dict[str, Any], *, agent_name: str | None = None) -> None:
        await self.emit(ev.TOOL_PROGRESS, data, agent_name=agent_name)

    async def tool_completed(self, data: dict[str, Any], *, agent_name: str | None = None) -> None:
        result, meta = summarize_result(data.get("result"))
        await self.emit(ev.TOOL_COMPLETED, {**data, "result": result, **meta}, agent_name=agent_name,
                               budget=False)

    async def error(self, code: str, message: str, *, recoverable: bool, agent_name: str | None = None,
                    **extra: Any) -> None:
        data = {"code": code, "message": message, "recoverable": recoverable, **extra}
        if recoverable:
            self.recoverable_errors.append(code)
        await self.emit(ev.AGENT_ERROR, data, agent_name=agent_name, budget=False)

    def counts(self) -> dict[str, int]:
        """Events this run has published so far, by type."""
        out: dict[str, int] = {}
        for event_type in self.emitted:
            out[event_type] = out.get(event_type, 0) + 1
        return out

    async def completed(self, status: str, *, result: Any, summary: str, duration_ms: int,
                        agent_name: str | None = None, **extra: Any) -> None:
        shown, meta = summarize_result(result)
        data = {**extra, "status": status, "result": shown, "summary": summary, "duration_ms": duration_ms,
                "event_count": self.count + 1, **meta}
        await self.emit(ev.AGENT_COMPLETED, data, agent_name=agent_name, budget=False)
