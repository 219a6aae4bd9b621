"""A TCP proxy on loopback for network conditions: added latency, byte counting, a capture of
what crossed the wire, and cutting every connection at once (a network failure)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass
class Wire:
    """What crossed the proxy, per direction."""

    to_server: bytearray = field(default_factory=bytearray)
    to_client: bytearray = field(default_factory=bytearray)

    @property
    def total(self) -> int:
        return len(self.to_server) + len(self.to_client)


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, *, latency_s: float = 0.0,
                 capture_limit: int = 8 * 1024 * 1024) -> None:
        self.target = (target_host, target_port)
        self.latency_s = latency_s
        self.capture_limit = capture_limit
        self.wire = Wire()
        self.server: asyncio.Server | None = None
        self.port = 0
        self._links: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> TcpProxy:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def url(self, scheme: str = "ws", path: str = "/ws", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._links.update((writer, up_writer))
        pumps = [asyncio.create_task(self._pump(reader, up_writer, self.wire.to_server)),
                 asyncio.create_task(self._pump(up_reader, writer, self.wire.to_client))]
        self._tasks.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pumps:
            task.cancel()
        for w in (writer, up_writer):
            self._links.discard(w)
            w.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, capture: bytearray) -> None:
        """Forward in order; each chunk leaves ``latency_s`` after it arrived."""
        loop = asyncio.get_running_loop()
        pending: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, chunk = await pending.get()
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if not chunk:
                    writer.close()
                    return
                writer.write(chunk)
                await writer.drain()

        sender = asyncio.create_task(deliver())
        try:
            while True:
                chunk = await reader.read(65536)
                if len(capture) < self.capture_limit:
                    capture.extend(chunk)
                pending.put_nowait((loop.time() + self.latency_s, chunk))
                if not chunk:
                    await sender
                    return
        finally:
            if not sender.done():
                sender.cancel()

    def cut(self) -> None:
        """Drop every connection through the proxy without a goodbye."""
        for w in list(self._links):
            with contextlib.suppress(Exception):
                w.transport.abort()
        self._links.clear()

    async def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
