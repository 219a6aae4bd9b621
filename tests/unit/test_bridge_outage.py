"""The bridge's publishing: micro-batches in order, the Redis-outage rules (events wait up to the
publish deadline; a run's agent_completed waits however long it takes), and a retried batch that
keeps its events. The same rules for any producer using ``ThreadPublisher`` directly."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from agentevents.protocol.envelope import build_event
from agentevents.publisher import ThreadPublisher
from agentevents.worker.bridge import EventBridge, RunContext


class SlowBus:
    """Answers each publish after ``delay_s``, refusing the first ``failures`` (Redis unreachable)."""

    def __init__(self, failures: int = 0, delay_s: float = 0.0) -> None:
        self.failures = failures
        self.delay_s = delay_s
        self.calls: list[list[str]] = []       # event ids of every attempt
        self.publishers: list[str | None] = []  # the publisher id of every attempt
        self.published: list[dict[str, Any]] = []

    async def publish_events(self, events: list[dict[str, Any]], publisher: str | None = None,
                             ) -> tuple[int, list[bytes], bool]:
        self.calls.append([e["event_id"] for e in events])
        self.publishers.append(publisher)
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
            longest = max(longest, b.out.queued)
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


def thought(step: int) -> dict[str, Any]:
    return build_event("agent_thinking", thread_id="t-1", run_id="r-1", user_id="alice", agent_name="bench",
                       data={"reasoning": "r", "step": step})


def test_a_thread_publisher_sends_bounded_batches_in_order_under_one_publisher_id():
    async def go() -> tuple[SlowBus, ThreadPublisher]:
        bus = SlowBus(failures=2, delay_s=0.002)
        out = ThreadPublisher(bus, "svc-1", max_batch=16, max_queue=40)  # type: ignore[arg-type]
        longest = 0
        for step in range(100):
            await out.put(thought(step))
            longest = max(longest, out.queued)
        await out.drain()
        assert longest <= 40
        return bus, out

    bus, out = asyncio.run(go())
    assert [e["data"]["step"] for e in bus.published] == list(range(100))
    assert out.published == 100 and out.queued == 0
    assert max(len(call) for call in bus.calls) <= 16
    assert len(bus.calls) < 50  # batches, not one call per event
    assert set(bus.publishers) == {"svc-1"}
    assert bus.calls[0] == bus.calls[1] == bus.calls[2]  # a refused batch is sent again unchanged


def test_a_thread_publisher_gives_up_at_its_deadline_except_for_patient_events():
    async def go(patient: bool) -> tuple[SlowBus, BaseException | None]:
        bus = SlowBus(failures=3)
        out = ThreadPublisher(bus, "svc-1", deadline_s=0.0, patient=lambda e: patient)  # type: ignore[arg-type]
        await out.put(thought(1))
        try:
            await out.drain()
        except RedisConnectionError as exc:
            return bus, exc
        return bus, None

    bus, failure = asyncio.run(go(patient=False))
    assert isinstance(failure, RedisConnectionError) and bus.published == []
    bus, failure = asyncio.run(go(patient=True))
    assert failure is None and [e["data"]["step"] for e in bus.published] == [1] and len(bus.calls) == 4


def test_a_thread_publisher_that_stopped_raises_on_the_next_put_and_then_publishes_again():
    class OnceBroken(SlowBus):
        async def publish_events(self, events, publisher=None):
            if not self.calls:
                self.calls.append([e["event_id"] for e in events])
                raise AttributeError("no such method")
            return await super().publish_events(events, publisher)

    async def go() -> OnceBroken:
        bus = OnceBroken()
        out = ThreadPublisher(bus, "svc-1")  # type: ignore[arg-type]
        await out.put(thought(1))
        with pytest.raises(AttributeError):
            await asyncio.wait_for(out.drain(), 5)
        assert out.queued == 0  # what was queued is dropped: it never got a seq
        await out.put(thought(2))
        await out.drain()
        return bus

    assert [e["data"]["step"] for e in asyncio.run(go()).published] == [2]
