"""The publisher process of every system that has one: the same schedule (``sidebyside.pacing``),
each system's own way to publish.

  raw-redis        PUBLISH bench:<stream> <event>
  ours-bus         an ``agent_thinking`` event put into the stream's ``agentevents.publisher.ThreadPublisher``
                   (a producer's events into one thread: queued, and sent in batches while a
                   publish is at Redis, as the agent path's bridge does); a run's count is
                   reported once every event put has been published
  ours-bus-each    agentevents.bus.Bus.publish_event of the same event, awaited: one round trip
                   (with Redis's fsync) per event
  socketio         AsyncRedisManager(write_only=True).emit("ev", event, room=stream)
  channels-core    channel_layer.group_send("g<stream>", {"type": "bench.event", "text": event})
  channels-pubsub  (the same, through RedisPubSubChannelLayer)

Commands on stdin, one JSON object a line; one answer a line on stdout:
``{"op": "run", "streams": [...], "rate": R, "duration": D, "users": [...]}`` ->
``{"published": N}``; ``{"op": "quit"}`` ends it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import uvloop
from sidebyside import pacing, wire

Publish = Callable[[str, int], Awaitable[None]]
Drain = Callable[[], Awaitable[None]]


async def _nothing() -> None:
    return None


async def make_publisher(target: str, redis_url: str, users: dict[str, str]) -> tuple[Publish, Drain]:
    """How this system publishes one event of a stream, and what to await before a run's count
    is reported (the events still queued in the process)."""
    pads: dict[str, str] = {}

    def pad(stream: str) -> str:
        if stream not in pads:
            pads[stream] = wire.padding_for(stream)
        return pads[stream]

    if target == "raw-redis":
        import redis.asyncio as aioredis
        client = aioredis.from_url(redis_url)

        async def publish(stream: str, seq: int) -> None:
            await client.publish(f"bench:{stream}", wire.encode(stream, seq, pad(stream)))
        return publish, _nothing

    if target in ("ours-bus", "ours-bus-each"):
        from agentevents.bus import Bus, connect
        from agentevents.protocol.envelope import build_event
        from agentevents.publisher import ThreadPublisher
        bus = Bus(connect(redis_url))
        outs: dict[str, ThreadPublisher] = {}

        def thought(stream: str, seq: int) -> dict[str, Any]:  # the stream's run id is its publisher id
            return build_event("agent_thinking", thread_id=stream, run_id="bench" + stream.replace("-", "")[:27],
                               user_id=users[stream], agent_name="bench",
                               data={"reasoning": "b", "step": seq, "metadata": {"t": time.time()}})

        if target == "ours-bus-each":
            async def publish_each(stream: str, seq: int) -> None:
                await bus.publish_event(thought(stream, seq))
            return publish_each, _nothing

        async def publish(stream: str, seq: int) -> None:
            event = thought(stream, seq)
            out = outs.get(stream)
            if out is None:
                out = outs[stream] = ThreadPublisher(bus, event["run_id"], max_queue=pacing.QUEUE_PER_STREAM)
            await out.put(event)

        async def drain() -> None:
            await asyncio.gather(*(out.drain() for out in outs.values()))
        return publish, drain

    if target == "socketio":
        import socketio
        manager = socketio.AsyncRedisManager(redis_url, write_only=True)

        async def publish(stream: str, seq: int) -> None:
            await manager.emit("ev", wire.event(stream, seq, pad(stream)), room=stream, namespace="/")
        return publish, _nothing

    if target in ("channels-core", "channels-pubsub"):
        from channels_app import configure, group
        configure(target.split("-", 1)[1], redis_url)
        from channels.layers import get_channel_layer
        layer = get_channel_layer()

        async def publish(stream: str, seq: int) -> None:
            text = wire.encode(stream, seq, pad(stream)).decode()
            await layer.group_send(group(stream), {"type": "bench.event", "text": text})
        return publish, _nothing

    raise SystemExit(f"unknown target {target!r}")


async def main(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    users: dict[str, str] = {}
    publish, drain = await make_publisher(args.target, args.redis_url, users)
    next_seq: dict[str, int] = {}
    print(orjson.dumps({"ready": True}).decode(), flush=True)
    while True:
        line = await reader.readline()
        if not line:
            return
        command: dict[str, Any] = orjson.loads(line)
        if command.get("op") == "quit":
            return
        streams = command["streams"]
        users.update(zip(streams, command.get("users") or [], strict=False))
        for s in streams:
            next_seq.setdefault(s, 1)
        counts = await pacing.run_lanes(streams, float(command["rate"]), float(command["duration"]), publish,
                                        next_seq)
        await drain()
        print(orjson.dumps({"published": sum(counts.values())}).decode(), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", required=True)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    uvloop.run(main(args))
