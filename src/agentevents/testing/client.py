"""The recording client: a real WebSocket that keeps every frame, raw, with its receive time.

It never drops a duplicate or reorders: assertions see exactly what the server sent. Waits are
conditions with deadlines; when a deadline passes, the error lists the frames actually seen.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ..protocol.envelope import EVENT_TYPES

_ids = itertools.count(1)

# The frame that answers each client message (an ``error`` frame answers any of them).
ANSWERS = {"start_agent": "run_accepted", "subscribe": "subscribed", "unsubscribe": "unsubscribed",
           "resume": "resumed", "cancel_agent": "cancel_accepted", "respond": "respond_accepted",
           "auth_refresh": "auth_refreshed", "ping": "pong"}


@dataclass
class Frame:
    index: int
    raw: str
    data: dict[str, Any]
    at: float  # time.monotonic() at receipt
    wall: float = 0.0  # time.time() at receipt, to compare with event timestamps

    @property
    def type(self) -> str:
        return str(self.data.get("type"))

    @property
    def is_event(self) -> bool:
        return self.type in EVENT_TYPES


def describe(frames: list[Frame], limit: int = 40) -> str:
    shown = frames[-limit:]
    lines = [f"  #{f.index} {f.type} seq={f.data.get('seq')} thread={str(f.data.get('thread_id'))[:8]} "
             f"run={str(f.data.get('run_id'))[:8]} {f.raw[:160]}" for f in shown]
    more = f"  ... {len(frames) - limit} earlier frames\n" if len(frames) > limit else ""
    return f"{len(frames)} frames received:\n{more}" + "\n".join(lines)


class HandshakeRefused(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"handshake refused with HTTP {status}: {body.strip()}")
        self.status = status
        self.body = body


class RecordingClient:
    def __init__(self, url: str, token: str | None, *, name: str = "client", via_subprotocol: bool = False,
                 ssl_context: ssl.SSLContext | None = None, extra_headers: dict[str, str] | None = None,
                 compression: str | None = "deflate", local_addr: tuple[str, int] | None = None) -> None:
        self.url = url
        self.local_addr = local_addr  # the source address to connect from (e.g. another loopback address)
        self.token = token
        self.name = name
        self.via_subprotocol = via_subprotocol
        self.ssl_context = ssl_context
        self.extra_headers = extra_headers or {}
        self.compression = compression
        self.frames: list[Frame] = []
        self.ws: ClientConnection | None = None
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.subprotocol: str | None = None
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None
        self.sent_at: dict[str, float] = {}

    # -- connection -------------------------------------------------------------------------
    async def connect(self, timeout_s: float = 5.0) -> Frame:
        headers = dict(self.extra_headers)
        subprotocols = None
        if self.token is not None:
            if self.via_subprotocol:
                subprotocols = ["jwt-auth", f"jwt.{self.token}"]
            else:
                headers["Authorization"] = f"Bearer {self.token}"
        try:
            self.ws = await connect(self.url, additional_headers=headers, subprotocols=subprotocols,
                                    ssl=self.ssl_context, open_timeout=timeout_s, max_size=4 * 1024 * 1024,
                                    compression=self.compression, close_timeout=2,
                                    **({"local_addr": self.local_addr} if self.local_addr else {}))
        except InvalidStatus as exc:
            raise HandshakeRefused(exc.response.status_code, exc.response.body.decode(errors="replace")) from None
        self.subprotocol = self.ws.subprotocol
        self.close_code = None
        self._reader = asyncio.create_task(self._read(self.ws), name=f"reader-{self.name}")
        return await self.wait_for(lambda f: f.type == "connection_established", timeout_s,
                                   "connection_established", since=len(self.frames))

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                text = raw if isinstance(raw, str) else raw.decode()
                frame = Frame(len(self.frames), text, orjson.loads(text), time.monotonic(), time.time())
                async with self._changed:
                    self.frames.append(frame)
                    self._changed.notify_all()
        except ConnectionClosed:
            pass
        finally:
            async with self._changed:
                self.close_code = ws.close_code
                self.close_reason = ws.close_reason
                self._changed.notify_all()

    @property
    def connected(self) -> bool:
        return self.ws is not None and self.close_code is None and self._reader is not None \
            and not self._reader.done()

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    async def drop(self) -> None:
        """Cut the TCP connection without a closing handshake (a network failure)."""
        if self.ws is not None:
            self.ws.transport.abort()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    # -- sending ----------------------------------------------------------------------------
    async def send(self, message: dict[str, Any]) -> str:
        message = dict(message)
        message.setdefault("request_id", f"{self.name}-{next(_ids)}")
        self.sent_at[message["request_id"]] = time.monotonic()
        assert self.ws is not None, "not connected"
        await self.ws.send(orjson.dumps(message).decode())
        return message["request_id"]

    async def send_raw(self, data: str | bytes) -> None:
        assert self.ws is not None, "not connected"
        await self.ws.send(data)

    async def request(self, message: dict[str, Any], timeout_s: float = 5.0) -> Frame:
        """Send and wait for the answer carrying the same request_id (its answer type, or an error)."""
        since = len(self.frames)
        rid = await self.send(message)
        wanted = {ANSWERS.get(str(message.get("type")), ""), "error"}
        return await self.wait_for(lambda f: f.data.get("request_id") == rid and f.type in wanted, timeout_s,
                                   f"answer to {message.get('type')} ({rid})", since=since)

    async def barrier(self, timeout_s: float = 10.0) -> Frame:
        """A ping answered in order (docs/protocol.md §5.8): once its pong is here, every event the
        gateway had queued for this connection when it read the ping has been received."""
        pong = await self.request({"type": "ping", "in_order": True}, timeout_s)
        if pong.type != "pong" or pong.data.get("in_order") is not True:
            raise AssertionError(f"{self.name}: the barrier ping was not answered in order: {pong.raw}")
        return pong

    async def start_agent(self, agent_type: str, message: str, *, thread_id: str | None = None,
                          options: dict[str, Any] | None = None, timeout_s: float = 5.0) -> Frame:
        msg: dict[str, Any] = {"type": "start_agent", "agent_type": agent_type, "message": message}
        if thread_id:
            msg["thread_id"] = thread_id
        if options:
            msg["options"] = options
        return await self.request(msg, timeout_s)

    # -- waiting ----------------------------------------------------------------------------
    async def wait_for(self, predicate: Callable[[Frame], bool], timeout_s: float, what: str,
                       since: int = 0) -> Frame:
        deadline = time.monotonic() + timeout_s
        async with self._changed:
            while True:
                for frame in self.frames[since:]:
                    if predicate(frame):
                        return frame
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.close_code is not None and self._reader and self._reader.done()):
                    closed = f" (connection closed: {self.close_code} {self.close_reason})" \
                        if self.close_code is not None else ""
                    raise AssertionError(f"{self.name}: no {what} within {timeout_s:g}s{closed}\n"
                                         f"{describe(self.frames)}")
                try:
                    await asyncio.wait_for(self._changed.wait(), remaining)
                except TimeoutError:
                    pass

    async def wait_closed(self, timeout_s: float = 5.0) -> int | None:
        if self._reader is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._reader), timeout_s)
            except TimeoutError:
                raise AssertionError(f"{self.name}: connection still open after {timeout_s:g}s\n"
                                     f"{describe(self.frames)}") from None
        return self.close_code

    async def wait_run_end(self, run_id: str, timeout_s: float = 10.0) -> Frame:
        return await self.wait_for(lambda f: f.type == "agent_completed" and f.data.get("run_id") == run_id,
                                   timeout_s, f"agent_completed for run {run_id[:8]}")

    # -- reading ----------------------------------------------------------------------------
    def events(self, *, run_id: str | None = None, thread_id: str | None = None,
               types: tuple[str, ...] | None = None) -> list[Frame]:
        return [f for f in self.frames if f.is_event
                and (run_id is None or f.data.get("run_id") == run_id)
                and (thread_id is None or f.data.get("thread_id") == thread_id)
                and (types is None or f.type in types)]

    def last_seq(self, thread_id: str) -> int:
        seqs = [f.data["seq"] for f in self.events(thread_id=thread_id)]
        return max(seqs) if seqs else 0

    def describe(self) -> str:
        return describe(self.frames)
