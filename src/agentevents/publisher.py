"""One producer's events into one thread, in order, in micro-batches.

``ThreadPublisher.put`` queues an event and returns; one flusher task sends everything queued in
one atomic publish (``Bus.publish_events``), and while that round trip (and Redis's fsync) is in
flight the next events gather for the following batch. So a producer that puts one event at a
time pays one round trip per event, and one that puts faster than Redis answers pays one per
batch (at most ``max_batch`` events). Order, gapless seqs, history, the archive outbox and
idempotent retries are those of ``Bus.publish_events``: the publisher id is the same for every
batch, and a batch whose reply was lost is sent again unchanged, so it is applied once.

The queue is bounded (``max_queue``): past it, ``put`` waits. While Redis is unreachable the
flusher retries the same batch (backoff up to 1 s) until ``deadline_s``; an event for which
``patient(event)`` holds is retried for ever. An error other than Redis being unreachable, or the
deadline passing, stops the publishing: what was queued is dropped (it never got a seq), and the
next ``put`` or ``drain`` raises that error.

The agent path's bridge (``worker/bridge.py``) publishes every run through one; any other
producer of events (a service of your own, the benchmarks) can use it the same way.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .bus import Bus

log = logging.getLogger("agentevents.publisher")


def _never(_event: dict[str, Any]) -> bool:
    return False


class ThreadPublisher:
    def __init__(self, bus: Bus, publisher_id: str, *, max_batch: int = 256, max_queue: int = 2_000,
                 deadline_s: float = 300.0, patient: Callable[[dict[str, Any]], bool] = _never) -> None:
        if max_batch < 1 or max_queue < 1:
            raise ValueError("max_batch and max_queue must be at least 1")
        self.bus = bus
        self.publisher_id = publisher_id
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.deadline_s = deadline_s
        self.patient = patient
        self.published = 0  # events Redis has taken (each batch once, retries not counted)
        self._queue: list[dict[str, Any]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        self._progress = asyncio.Event()

    @property
    def queued(self) -> int:
        """Events put and not yet published."""
        return len(self._queue)

    async def put(self, event: dict[str, Any]) -> None:
        """Queue an event (built by ``protocol.envelope.build_event``, all of one thread); waits
        while ``max_queue`` events are queued; raises what stopped the publishing."""
        await self.room()
        self.add(event)
        # A point where the producer yields: the flusher (and a cancel) get their turn even while
        # it puts in a tight loop.
        await asyncio.sleep(0)

    async def room(self) -> None:
        """Wait until an event can be queued; raises what stopped the publishing."""
        self._raise_failure()
        while len(self._queue) >= self.max_queue:
            await self._wait_progress()

    def add(self, event: dict[str, Any]) -> None:
        """Queue an event without waiting (after ``room``; the queue bound is the caller's)."""
        self._queue.append(event)
        self._ensure_flusher()

    def _ensure_flusher(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop(), name=f"publish-{self.publisher_id}")

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
                self._ensure_flusher()
        await self._progress.wait()

    def _raise_failure(self) -> None:
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    async def _flush_loop(self) -> None:
        try:
            while self._queue:
                batch = self._queue[:self.max_batch]
                patient = any(self.patient(e) for e in batch)
                try:
                    await self._publish_with_retry(batch, math.inf if patient else self.deadline_s)
                except Exception as exc:  # Redis gone past the deadline, or a bug: publishing stops
                    # What was queued was never published (no seq); the next put or drain raises this.
                    self._failure = exc
                    self._queue.clear()
                    return
                del self._queue[:len(batch)]
                self.published += len(batch)
                self._progress.set()
        finally:
            self._progress.set()

    async def _publish_with_retry(self, batch: list[dict[str, Any]], deadline_s: float) -> int:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_s
        backoff, attempts = 0.05, 0
        while True:
            try:
                first, _payloads, _fresh = await self.bus.publish_events(batch, self.publisher_id)
                if attempts:
                    log.info("publish_recovered publisher=%s events=%d attempts=%d", self.publisher_id,
                             len(batch), attempts)
                return first
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                attempts += 1
                if loop.time() > deadline:
                    raise
                if attempts == 1 or attempts % 20 == 0:
                    log.warning("publish_waiting publisher=%s thread_id=%s events=%d attempts=%d error=%s",
                                self.publisher_id, batch[0]["thread_id"], len(batch), attempts, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
