"""python-socketio on aiohttp, scaled out the documented way: an ``AsyncRedisManager`` (Redis
pub/sub), which external publishers emit through (``AsyncRedisManager(url, write_only=True)``).

A client connects (Engine.IO 4, WebSocket transport), emits ``join`` with its stream and gets the
acknowledgement once it is in the room of that name; events arrive as ``ev``.
"""

from __future__ import annotations

import argparse
import asyncio

import socketio
import uvloop
from aiohttp import web


def make_app(redis_url: str) -> web.Application:
    manager = socketio.AsyncRedisManager(redis_url)
    sio = socketio.AsyncServer(async_mode="aiohttp", client_manager=manager, transports=["websocket"],
                               cors_allowed_origins="*", logger=False, engineio_logger=False)
    app = web.Application()
    sio.attach(app)

    @sio.event
    async def join(sid: str, room: str) -> str:
        await sio.enter_room(sid, room)
        return "ok"

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(make_app(args.redis_url), host=args.host, port=args.port, print=None, access_log=None,
                backlog=4096)
