"""A tiny HTTP endpoint for ``/health`` and ``/metrics`` (Prometheus) on worker processes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

HealthCheck = Callable[[], Awaitable[dict[str, Any]]]


def http_response(status: int, body: bytes, content_type: str = "application/json") -> bytes:
    reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}.get(status, "OK")
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode() + body


async def render(path: str, check: HealthCheck) -> tuple[int, bytes, str]:
    if path == "/health":
        report = await check()
        return (200 if report.get("status") == "ok" else 503), orjson.dumps(report), "application/json"
    if path == "/metrics":
        return 200, generate_latest(), CONTENT_TYPE_LATEST
    return 404, b'{"error":"not found"}', "application/json"


async def serve_health(host: str, port: int, check: HealthCheck) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            parts = line.decode("latin-1").split()
            path = parts[1] if len(parts) >= 2 else "/"
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            status, body, ctype = await render(path, check)
            writer.write(http_response(status, body, ctype))
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)
