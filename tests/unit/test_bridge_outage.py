"""The bridge during a Redis outage: events wait for Redis up to the publish deadline, a run's
agent_completed waits however long it takes, and a retried publish keeps its event id."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from agentevents.worker.bridge import EventBridge, RunContext


class FlakyBus:
    """Refuses the first ``failures`` publishes (Redis unreachable), then takes them."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts: list[str] = []
        self.published: list[dict[str, Any]] = []

    async def publish_event(self, event: dict[str, Any]) -> tuple[int, bytes, bool]:
        self.attempts.append(event["event_id"])
        if len(self.attempts) <= self.failures:
            raise RedisConnectionError("connection refused")
        self.published.append(event)
        return len(self.published), b"{}", True


def bridge(bus: FlakyBus, deadline_s: float) -> EventBridge:
    run = RunContext(run_id="r-1", thread_id="t-1", user_id="alice", agent_type="math", message="hi", options={},
                     permissions=frozenset(), tier="free", requested_at=0.0)
    return EventBridge(bus, run, publish_deadline_s=deadline_s)  # type: ignore[arg-type]


def test_an_event_gives_up_after_the_publish_deadline():
    bus = FlakyBus(failures=10_000)
    with pytest.raises(RedisConnectionError):
        asyncio.run(bridge(bus, deadline_s=0.0).thinking("step"))
    assert bus.published == []


def test_agent_completed_waits_past_the_deadline_and_keeps_its_event_id():
    bus = FlakyBus(failures=3)  # 0.35 s of backoff, past the deadline of 0
    asyncio.run(bridge(bus, deadline_s=0.0).completed("failed", result=None, summary="s", duration_ms=1))
    assert [e["type"] for e in bus.published] == ["agent_completed"]
    assert set(bus.attempts) == {bus.published[0]["event_id"]}  # every retry was the same event
    assert len(bus.attempts) == 4
