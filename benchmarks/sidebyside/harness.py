"""The one client harness: N WebSocket connections, one per stream, each read by the same loop
that hands every event to the one ``DeliveryChecker``.

What differs between systems is only how a connection is opened and joined to its stream and how
an event is read from a frame: a ``Protocol`` (``systems.py``). The client never compresses
(``permessage-deflate`` off for every system) and sends no pings of its own (each server's
heartbeat is answered as the library does).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from .checker import DeliveryChecker

# Loopback source addresses, so that many connections never run short of source ports.
SOURCE_ADDRESSES = tuple(f"127.0.0.{i}" for i in range(1, 9))
OPEN_CONCURRENCY = 100


class StreamProtocol(Protocol):
    def url(self, client: Client) -> str: ...

    def headers(self, client: Client) -> dict[str, str] | None: ...

    async def join(self, client: Client) -> None:
        """After the upgrade: whatever makes the connection receive its stream; returns once it does."""

    def parse(self, client: Client, message: str | bytes) -> tuple[str, int, float] | None:
        """(stream, seq, publish time) of an event frame, None for any other frame."""


class Client:
    __slots__ = ("proto", "index", "stream", "checker", "ws", "task", "close_code", "state")

    def __init__(self, proto: StreamProtocol, index: int, stream: str, checker: DeliveryChecker) -> None:
        self.proto = proto
        self.index = index
        self.stream = stream
        self.checker = checker
        self.ws: ClientConnection | None = None
        self.task: asyncio.Task[None] | None = None
        self.close_code: int | None = None
        self.state: Any = None  # a protocol's own per-connection state

    async def open(self, source: str) -> None:
        self.ws = await connect(self.proto.url(self), additional_headers=self.proto.headers(self),
                                compression=None, proxy=None, max_size=2**22, ping_interval=None,
                                open_timeout=60, close_timeout=2, user_agent_header=None,
                                local_addr=(source, 0))
        await self.proto.join(self)
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        parse, record = self.proto.parse, self.checker.record
        assert self.ws is not None
        try:
            async for message in self.ws:
                now = time.time()
                got = parse(self, message)
                if got is not None:
                    record(got[0], got[1], got[2], now, len(message))
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code

    def send_soon(self, text: str) -> None:
        if self.ws is not None:
            task = asyncio.ensure_future(self.ws.send(text))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    @property
    def open_now(self) -> bool:
        return self.task is not None and not self.task.done()

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 3)
            if self.ws.transport is not None:
                self.ws.transport.abort()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task


async def open_clients(proto: StreamProtocol, streams: Sequence[str], checker: DeliveryChecker, *,
                       first_index: int = 0, concurrency: int = OPEN_CONCURRENCY,
                       timeout_s: float = 300.0) -> list[Client]:
    """Open and join one connection per stream, ``concurrency`` handshakes at a time; all or none."""
    clients = [Client(proto, first_index + i, s, checker) for i, s in enumerate(streams)]
    gate = asyncio.Semaphore(concurrency)

    async def one(client: Client) -> None:
        async with gate:
            await client.open(SOURCE_ADDRESSES[client.index % len(SOURCE_ADDRESSES)])

    try:
        results = await asyncio.wait_for(asyncio.gather(*(one(c) for c in clients), return_exceptions=True),
                                         timeout_s)
    except TimeoutError:
        await close_clients(clients)
        raise RuntimeError(f"opening {len(clients)} connections took longer than {timeout_s:g}s") from None
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        await close_clients(clients)
        raise RuntimeError(f"{len(failures)} of {len(clients)} connections failed; the first: {failures[0]!r}")
    return clients


async def close_clients(clients: Sequence[Client], concurrency: int = 500) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(client: Client) -> None:
        async with gate:
            await client.close()

    await asyncio.gather(*(one(c) for c in clients), return_exceptions=True)


async def drain(checker: DeliveryChecker, published: int, *, stall_s: float = 2.0, limit_s: float = 15.0) -> float:
    """Wait until ``published`` events arrived, or nothing arrived for ``stall_s``, or ``limit_s``
    passed; returns the seconds waited."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    seen, seen_at = checker.window.delivered, start
    while checker.window.delivered < published:
        now = loop.time()
        if checker.window.delivered != seen:
            seen, seen_at = checker.window.delivered, now
        if now - seen_at > stall_s or now - start > limit_s:
            break
        await asyncio.sleep(0.01)
    return loop.time() - start
