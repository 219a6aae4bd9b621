"""The publisher's schedule, the same for every system.

Streams are split among at most ``MAX_LANES`` lanes; a lane publishes to its streams in turn, one
event at a time, so two events of one stream are never in flight together (their order is the
publisher's). At a fixed total rate each lane keeps its share of the schedule, publishing back to
back when it is late; at rate 0 every lane publishes as fast as its system answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

MAX_LANES = 64
YIELD_EVERY = 64
# Ours with a batching publisher (ThreadPublisher): events a stream may hold waiting for their
# publish call before the lane's next put waits, as the other systems' lanes wait for a publish.
QUEUE_PER_STREAM = 64


def lanes(streams: Sequence[str], max_lanes: int = MAX_LANES) -> list[list[str]]:
    """Streams dealt round-robin into at most ``max_lanes`` non-empty lanes."""
    count = max(1, min(len(streams), max_lanes))
    return [list(streams[i::count]) for i in range(count) if streams[i::count]]


def due(elapsed_s: float, rate: float) -> int:
    """How many events a lane of ``rate`` events/s should have published after ``elapsed_s``."""
    return int(elapsed_s * rate) + 1 if elapsed_s >= 0 else 0


async def run_lanes(streams: Sequence[str], rate: float, duration_s: float,
                    publish: Callable[[str, int], Awaitable[None]],
                    next_seq: dict[str, int]) -> dict[str, int]:
    """Publish for ``duration_s`` at ``rate`` events/s in total (0: as fast as possible).
    ``next_seq`` holds each stream's next number and is advanced; returns how many were published
    per stream."""
    groups = lanes(streams)
    published = {s: 0 for s in streams}
    loop = asyncio.get_running_loop()
    start = loop.time()
    end = start + duration_s

    async def lane(own: list[str]) -> None:
        share = rate * len(own) / len(streams) if rate > 0 else 0.0
        k = 0
        while True:
            now = loop.time()
            if now >= end:
                return
            if share > 0:
                behind = due(now - start, share) - k
                if behind <= 0:
                    await asyncio.sleep(min(end, start + k / share) - now)
                    continue
            stream = own[k % len(own)]
            seq = next_seq[stream]
            next_seq[stream] = seq + 1
            await publish(stream, seq)
            published[stream] += 1
            k += 1
            if k % YIELD_EVERY == 0:  # a publish that never waits must not starve the rest of the loop
                await asyncio.sleep(0)

    await asyncio.gather(*(lane(own) for own in groups))
    return published
