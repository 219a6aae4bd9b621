"""What the native stack's gateways hold: open connections and followed conversations (from each
gateway's /health), file descriptors and resident memory (from its process). For the
@process_stats scenarios about leaks (T019, T030, T111); a poll with a deadline waits for them to settle.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

import orjson


@dataclass(frozen=True)
class GatewayState:
    connections: int
    threads: int  # conversations the gateway follows for its connections
    fds: int
    rss_mb: float


def gateway_names() -> list[str]:
    from ..stack import native
    return list(native.GATEWAYS)


def port_of(gateway: str) -> int:
    from ..stack import native
    return native.GATEWAYS[gateway]


def state_of(gateway: str) -> GatewayState:
    import psutil

    from ..stack import native
    port = native.GATEWAYS[gateway]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
        health = orjson.loads(resp.read())
    process = psutil.Process(native.component_pid(gateway))
    return GatewayState(int(health["connections"]), int(health["threads"]), process.num_fds(),
                        process.memory_info().rss / 2**20)


def states() -> dict[str, GatewayState]:
    return {name: state_of(name) for name in gateway_names()}


async def current(gateway: str | None = None) -> dict[str, GatewayState]:
    """The state of every gateway (or of one), read off the event loop."""
    if gateway is None:
        return await asyncio.to_thread(states)
    return {gateway: await asyncio.to_thread(state_of, gateway)}


async def settled(predicate: Callable[[dict[str, GatewayState]], bool], timeout_s: float,
                  what: str) -> dict[str, GatewayState]:
    """Poll until ``predicate(states)`` holds; fail after the deadline with the last states seen."""
    deadline = time.monotonic() + timeout_s
    while True:
        now = await current()
        if predicate(now):
            return now
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout_s:g} s; gateways now: {now}")
        await asyncio.sleep(0.2)  # polling a condition with a deadline, not waiting for time to pass
