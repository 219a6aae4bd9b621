"""The bridge's publishing: micro-batches in order, the Redis-outage rules (events wait up to the
publish deadline; a run's agent_completed waits however long it takes), and a retried batch that
keeps its events."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from agentevents.worker.bridge import EventBridge, RunContext


class SlowBus:
    """Answers each publish after ``delay_s``, refusing the first ``failures`` (Redis unreachable)."""

    def __init__(self, failures: int = 0, delay_s: float = 0.0) -> None:
        self.failures = failures
        self.delay_s = delay_s
        self.calls: list[list[str]] = []       # event ids of every attempt
        self.published: list[dict[str, Any]] = []

    async def publish_events(self, events: list[dict[str, Any]], publisher: str | None = None,
                             ) -> tuple[int, list[bytes], bool]:
        self.calls.append([e["event_id"] for e in events])
        await asyncio.sleep(self.delay_s)  # the round trip
        if len(self.calls) <= self.failures:
            raise RedisConnectionError("connection refused")
        first = len(self.published) + 1
        self.published.extend(events)
        return first, [b"{}"] * len(events), True


def bridge(bus: SlowBus, deadline_s: float = 300.0, **kwargs: Any) -> EventBridge:
    run = RunContext(run_id="r-1", thread_id="t-1", user_id="alice", agent_type="math", message="hi", options={},
                     permissions=frozenset(), tier="free", requested_at=0.0)
    return EventBridge(bus, run, publish_deadline_s=deadline_s, **kwargs)  # type: ignore[arg-type]


def test_events_emitted_during_a_round_trip_leave_together_in_order():
    async def go() -> SlowBus:
        bus = SlowBus(delay_s=0.01)
        b = bridge(bus)
        await b.started()
        for i in range(30):
            await b.tool_progress({"i": i})
        await b.completed("completed", result=1, summary="s", duration_ms=1)
        return bus

    bus = asyncio.run(go())
    assert [e["type"] for e in bus.published] == ["agent_started"] + ["tool_progress"] * 30 + ["agent_completed"]
    assert [e["data"].get("i") for e in bus.published[1:31]] == list(range(30))
    assert len(bus.calls) < 5  # one round trip per batch, not per event
    assert bus.published[-1]["data"]["event_count"] == 32


def test_a_full_queue_makes_emit_wait_instead_of_growing():
    async def go() -> int:
        bus = SlowBus(delay_s=0.005)
        b = bridge(bus, max_queue=10, max_batch=4)
        longest = 0
        for i in range(50):
            await b.tool_progress({"i": i})
            longest = max(longest, len(b._queue))
        await b.drain()
        assert len(bus.published) == 50
        return longest

    assert asyncio.run(go()) <= 10


def test_an_event_gives_up_after_the_publish_deadline_and_the_run_hears_it():
    async def go() -> SlowBus:
        bus = SlowBus(failures=10_000)
        b = bridge(bus, deadline_s=0.0)
        await b.thinking("step")
        with pytest.raises(RedisConnectionError):
            await b.drain()
        return bus

    assert asyncio.run(go()).published == []


def test_agent_completed_waits_past_the_deadline_and_every_retry_is_the_same_batch():
    async def go() -> SlowBus:
        bus = SlowBus(failures=3)  # 0.35 s of backoff, past the deadline of 0
        await bridge(bus, deadline_s=0.0).completed("failed", result=None, summary="s", duration_ms=1)
        return bus

    bus = asyncio.run(go())
    assert [e["type"] for e in bus.published] == ["agent_completed"]
    assert len(bus.calls) == 4 and all(call == bus.calls[0] for call in bus.calls)


def test_an_unexpected_publish_failure_ends_the_run_instead_of_retrying_for_ever():
    class BrokenBus(SlowBus):
        async def publish_events(self, events, publisher=None):
            self.calls.append([e["event_id"] for e in events])
            raise AttributeError("no such method")

    async def go() -> BrokenBus:
        bus = BrokenBus()
        b = bridge(bus)
        await b.thinking("step")
        with pytest.raises(AttributeError):
            await asyncio.wait_for(b.drain(), 5)
        return bus

    assert len(asyncio.run(go()).calls) == 1
