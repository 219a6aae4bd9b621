"""A small JSON HTTP service on loopback, for the HTTP API tool to call in tests."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import orjson


class JsonService:
    """Serves ``routes`` (path -> JSON) and records each request. ``base_url`` says where it
    listens (a backend's http_api tool calls only the base URLs it allows); without one, on any
    free port of 127.0.0.1."""

    def __init__(self, routes: dict[str, object], base_url: str = "") -> None:
        self.routes = routes
        self.requests: list[tuple[str, str]] = []
        self.server: asyncio.Server | None = None
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 0

    async def start(self) -> JsonService:
        try:
            self.server = await asyncio.start_server(self._handle, self.host, self.port)
        except OSError as exc:
            raise RuntimeError(f"the test HTTP service cannot listen on {self.host}:{self.port}: "
                               f"{exc.strerror or exc}") from None
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = (await reader.readline()).decode("latin-1").split()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value.strip())
            if length:
                await reader.readexactly(length)
            method, path = request[0], request[1]
            self.requests.append((method, path))
            found = path in self.routes
            body = orjson.dumps(self.routes[path] if found else {"error": "not found"})
            status = "200 OK" if found else "404 Not Found"
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                         f"Connection: close\r\n\r\n".encode() + body)
            await writer.drain()
        finally:
            writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
