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
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..bus import Bus
from ..protocol import envelope as ev
from ..protocol.limits import ThinkingThrottle, summarize_result, truncate_text
from ..protocol.redaction import redact

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
    """Events leave in micro-batches: ``emit`` queues the event and returns; one flusher task per
    run sends everything queued in one atomic publish (``Bus.publish_events``), and while that
    round trip (and Redis's fsync) is in flight the next events gather for the following batch.
    So a run that emits one event at a time pays one round trip per event, and a run that emits
    faster than Redis answers pays one per batch. The queue is bounded (``max_queue``): past it,
    ``emit`` waits. ``agent_completed`` waits until every event of the run is published."""

    def __init__(self, bus: Bus, run: RunContext, *,
                 max_events: int = 10_000, publish_deadline_s: float = 300.0,
                 thinking_rate: float = 20.0, thinking_burst: float = 50.0,
                 max_batch: int = 256, max_queue: int = 2_000) -> None:
        self.bus = bus
        self.run = run
        self.max_events = max_events
        self.publish_deadline_s = publish_deadline_s
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.throttle = ThinkingThrottle(rate=thinking_rate, burst=thinking_burst)
        self.count = 0
        self.redactions = 0
        self.emitted: list[str] = []
        self.recoverable_errors: list[str] = []
        self._step = 0
        self._publisher = f"{run.run_id}:{uuid.uuid4().hex[:8]}"
        self._queue: list[dict[str, Any]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        self._progress = asyncio.Event()

    async def emit(self, event_type: str, data: dict[str, Any], *, agent_name: str | None = None,
                   budget: bool = True) -> None:
        if event_type != ev.AGENT_THINKING:
            await self._flush_thinking()
        await self._publish(event_type, data, agent_name=agent_name, budget=budget)

    async def _publish(self, event_type: str, data: dict[str, Any], *, agent_name: str | None,
                       budget: bool) -> None:
        self._raise_failure()
        if budget and self.count >= self.max_events:
            raise EventBudgetExceeded(f"run emitted {self.count} events; the limit is {self.max_events}")
        clean, n = redact(data)
        self.redactions += n
        if n:
            clean.setdefault("redactions", n)
        event = ev.build_event(event_type, thread_id=self.run.thread_id, run_id=self.run.run_id,
                               user_id=self.run.user_id, agent_name=agent_name or self.run.agent_type,
                               data=clean)
        while len(self._queue) >= self.max_queue:
            await self._wait_progress()
        self._queue.append(event)
        self.count += 1
        self.emitted.append(event_type)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop(), name=f"publish-{self.run.run_id}")
        if event_type == ev.AGENT_COMPLETED:
            await self.drain()
        else:
            # A point where the run yields: the flusher (and a cancel) get their turn even while
            # an agent emits in a tight loop.
            await asyncio.sleep(0)

    async def drain(self) -> None:
        """Return once every queued event is published (raises what stopped the publishing)."""
        while self._queue:
            await self._wait_progress()
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        self._raise_failure()

    async def _wait_progress(self) -> None:
        self._progress.clear()
        if self._flusher is None or self._flusher.done():
            self._raise_failure()
            if self._queue:  # nothing is publishing: start again
                self._flusher = asyncio.create_task(self._flush_loop(), name=f"publish-{self.run.run_id}")
        await self._progress.wait()

    def _raise_failure(self) -> None:
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    async def _flush_loop(self) -> None:
        try:
            while self._queue:
                batch = self._queue[:self.max_batch]
                # A run's end is never given up on: its agent_completed waits for Redis however long.
                patient = any(e["type"] == ev.AGENT_COMPLETED for e in batch)
                try:
                    await self._publish_with_retry(batch, math.inf if patient else self.publish_deadline_s)
                except Exception as exc:  # Redis gone past the deadline, or a bug: the run has crashed
                    # What it queued was never published (no seq); the next emit or drain raises this.
                    self._failure = exc
                    self._queue.clear()
                    return
                del self._queue[:len(batch)]
                self._progress.set()
        finally:
            self._progress.set()

    async def _publish_with_retry(self, batch: list[dict[str, Any]], deadline_s: float) -> int:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_s
        backoff, attempts = 0.05, 0
        while True:
            try:
                first, _payloads, _fresh = await self.bus.publish_events(batch, self._publisher)
                if attempts:
                    log.info("publish_recovered run_id=%s events=%d attempts=%d", self.run.run_id,
                             len(batch), attempts)
                return first
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                attempts += 1
                if loop.time() > deadline:
                    raise
                if attempts == 1 or attempts % 20 == 0:
                    log.warning("publish_waiting run_id=%s thread_id=%s events=%d attempts=%d error=%s",
                                self.run.run_id, self.run.thread_id, len(batch), attempts, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)

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
