"""The publisher process of every system that has one: the same schedule (``sidebyside.pacing``),
each system's own way to publish.

  raw-redis        PUBLISH bench:<stream> <event>
  ours-bus         agentevents.bus.Bus.publish_event of an ``agent_thinking`` event into the thread
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


async def make_publisher(target: str, redis_url: str, users: dict[str, str]) -> Publish:
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
        return publish

    if target == "ours-bus":
        from agentevents.bus import Bus, connect
        from agentevents.protocol.envelope import build_event
        bus = Bus(connect(redis_url))
        runs: dict[str, str] = {}

        async def publish(stream: str, seq: int) -> None:
            run_id = runs.setdefault(stream, "bench" + stream.replace("-", "")[:27])
            event = build_event("agent_thinking", thread_id=stream, run_id=run_id, user_id=users[stream],
                                agent_name="bench", data={"reasoning": "b", "step": seq,
                                                          "metadata": {"t": time.time()}})
            await bus.publish_event(event)
        return publish

    if target == "socketio":
        import socketio
        manager = socketio.AsyncRedisManager(redis_url, write_only=True)

        async def publish(stream: str, seq: int) -> None:
            await manager.emit("ev", wire.event(stream, seq, pad(stream)), room=stream, namespace="/")
        return publish

    if target in ("channels-core", "channels-pubsub"):
        from channels_app import configure, group
        configure(target.split("-", 1)[1], redis_url)
        from channels.layers import get_channel_layer
        layer = get_channel_layer()

        async def publish(stream: str, seq: int) -> None:
            text = wire.encode(stream, seq, pad(stream)).decode()
            await layer.group_send(group(stream), {"type": "bench.event", "text": text})
        return publish

    raise SystemExit(f"unknown target {target!r}")


async def main(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    users: dict[str, str] = {}
    publish = await make_publisher(args.target, args.redis_url, users)
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
        print(orjson.dumps({"published": sum(counts.values())}).decode(), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", required=True)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    uvloop.run(main(args))
