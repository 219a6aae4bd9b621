"""Crowds: many generated people (``User001`` ...) who connect, start their runs and are checked
together. The crowd's names are kept in ``world.notes["crowd"]``; every check is made per person,
so a leaked, lost or reordered event names the person it happened to.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .world import World

CROWD_RUN_TIMEOUT_S = 45
# How many connections to open at once (a small machine, shared with the stack under test).
CONNECT_BATCH = 50


def crowd(world: World) -> list[str]:
    names = world.notes.get("crowd")
    if not names:
        raise AssertionError("no crowd is connected in this scenario")
    return names


async def connect_many(world: World, names_and_kwargs: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Connect people in batches of CONNECT_BATCH; the clients in order."""
    clients = []
    for i in range(0, len(names_and_kwargs), CONNECT_BATCH):
        batch = names_and_kwargs[i:i + CONNECT_BATCH]
        clients += await asyncio.gather(*(world.connect(n, **kw) for n, kw in batch))
    return clients


async def connect_crowd(world: World, count: int, prefix: str = "User") -> float:
    """Connect ``count`` new people (with the scenario's default permissions); the time it took."""
    names = [f"{prefix}{i:03d}" for i in range(1, count + 1)]
    started = time.monotonic()
    await connect_many(world, [(name, {}) for name in names])
    world.notes["crowd"] = names
    return time.monotonic() - started


async def crowd_finished(world: World) -> None:
    """Every run of the crowd has its agent_completed (or the error lists what was received)."""
    runs = [r for name in crowd(world) for r in world.runs_of(name)]
    await asyncio.gather(*(r.client.wait_run_end(r.run_id, CROWD_RUN_TIMEOUT_S) for r in runs))


async def crowd_quiet(world: World) -> None:
    """The defined end for "nothing else arrives": every run ended, then an in-order barrier on every
    connection of the crowd, then a short grace."""
    await crowd_finished(world)
    await world.quiet([c for name in crowd(world) for c in world.person(name).clients])


def completion_times(world: World) -> list[float]:
    """From each request of the crowd to its run's agent_completed, in seconds."""
    out = []
    for name in crowd(world):
        for run in world.runs_of(name):
            end = next(f for f in run.client.events(run_id=run.run_id) if f.type == "agent_completed")
            out.append(end.at - run.sent_at)
    return out
