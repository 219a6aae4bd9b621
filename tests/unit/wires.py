"""A connection's wire in memory (the Wire interface of agentevents.gateway.connection): it
records the frames written, parsed, and can hold writes back like a paused transport."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from agentevents.gateway.connection import WireClosed


class MemoryWire:
    def __init__(self, *, ready: bool = True) -> None:
        self.sent: list[dict[str, Any]] = []
        self.writes = 0  # how many writes carried them
        self.closed: int | None = None
        self._ready = ready
        self._resumed = asyncio.Event()
        if ready:
            self._resumed.set()

    def ready(self) -> bool:
        return self._ready and self.closed is None

    def write(self, texts: list[bytes]) -> None:
        assert self.ready(), "written while the wire could not take frames"
        assert all(isinstance(t, bytes) for t in texts)
        self.writes += 1
        self.sent += [orjson.loads(t) for t in texts]

    async def writable(self) -> None:
        while not self.ready():
            if self.closed is not None:
                raise WireClosed
            await self._resumed.wait()

    def pause(self) -> None:
        self._ready = False
        self._resumed.clear()

    def resume(self) -> None:
        self._ready = True
        self._resumed.set()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = code
        self._resumed.set()
