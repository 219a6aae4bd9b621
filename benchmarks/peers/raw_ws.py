"""The ceilings: a bare ``websockets`` server, one connection per stream at ``/s/<stream>``.

``--mode memory``: the server is its own publisher. A client of ``/control`` sends
``{"op": "run", "streams": [...], "rate": R, "duration": D}``; the server makes the events in
memory, on the shared schedule (``sidebyside.pacing``), sends each to its stream's connection, and
answers ``{"published": N}``.

``--mode redis``: one hop through Redis pub/sub. Each stream's connection subscribes the channel
``bench:<stream>`` on the server's one pub/sub connection (confirmed before ``{"ready": true}``);
every message on it is written to that connection as it is.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

import orjson
import uvloop
from sidebyside import pacing, wire
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

READY = '{"ready":true}'


class Server:
    def __init__(self, mode: str, redis_url: str | None) -> None:
        self.mode = mode
        self.redis_url = redis_url
        self.conns: dict[str, ServerConnection] = {}
        self.next_seq: dict[str, int] = {}
        self.pads: dict[str, str] = {}
        self.pubsub = None
        self.confirm: dict[bytes, asyncio.Future[None]] = {}

    async def start(self) -> None:
        if self.mode == "redis":
            import redis.asyncio as aioredis
            self.redis = aioredis.from_url(self.redis_url)
            self.pubsub = self.redis.pubsub()
            await self.pubsub.subscribe("bench:control")  # the connection exists from the start
            self.reader = asyncio.create_task(self.read())

    async def read(self) -> None:
        while True:
            message = await self.pubsub.get_message(timeout=1.0)
            if message is None:
                continue
            name: bytes = message["channel"]
            if message["type"] == "subscribe":
                waiter = self.confirm.pop(name, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
            elif message["type"] == "message":
                ws = self.conns.get(name[6:].decode())
                if ws is not None:
                    with contextlib.suppress(ConnectionClosed):
                        await ws.send(message["data"], text=True)

    async def handler(self, ws: ServerConnection) -> None:
        path = ws.request.path
        if path == "/control":
            await self.control(ws)
            return
        stream = path.rsplit("/", 1)[-1]
        self.conns[stream] = ws
        channel = f"bench:{stream}".encode()
        try:
            if self.pubsub is not None:
                waiter = asyncio.get_running_loop().create_future()
                self.confirm[channel] = waiter
                await self.pubsub.subscribe(channel)
                await asyncio.wait_for(waiter, 10)
            await ws.send(READY)
            async for _ in ws:
                pass
        except ConnectionClosed:
            pass
        finally:
            if self.conns.get(stream) is ws:
                del self.conns[stream]
            if self.pubsub is not None:
                with contextlib.suppress(Exception):
                    await self.pubsub.unsubscribe(channel)

    async def publish(self, stream: str, seq: int) -> None:
        target = self.conns.get(stream)
        if target is not None:
            with contextlib.suppress(ConnectionClosed):
                await target.send(wire.encode(stream, seq, self.pads[stream]), text=True)

    async def control(self, ws: ServerConnection) -> None:
        async for raw in ws:
            command = orjson.loads(raw)
            if command.get("op") != "run":
                await ws.send(orjson.dumps({"error": "unknown op"}), text=True)
                continue
            streams = command["streams"]
            for s in streams:
                self.next_seq.setdefault(s, 1)
                if s not in self.pads:
                    self.pads[s] = wire.padding_for(s)
            counts = await pacing.run_lanes(streams, float(command["rate"]), float(command["duration"]),
                                            self.publish, self.next_seq)
            await ws.send(orjson.dumps({"published": sum(counts.values())}), text=True)


async def main(args: argparse.Namespace) -> None:
    server = Server(args.mode, args.redis_url)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with serve(server.handler, args.host, args.port, compression=None, max_size=2**20, ping_interval=20,
                     ping_timeout=20, close_timeout=1, backlog=4096):
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=("memory", "redis"), required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url")
    uvloop.run(main(parser.parse_args()))
