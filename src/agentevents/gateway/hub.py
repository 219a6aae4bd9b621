"""The hub: ONE Redis pub/sub connection per gateway, fanning live events out to the local
connections subscribed to each thread. Not a read loop per WebSocket.

When the pub/sub connection drops, the hub reconnects, resubscribes every channel and asks
every local cursor to catch up from the thread's stream, so nothing published during the gap
is lost.

The same connection carries the gateway's notice channels (revocations): each has a handler for
its messages and one called whenever its subscription is confirmed, since notices published while
the connection was down are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..bus import channel, split_payloads, thread_of_channel
from ..protocol.envelope import peek_head

if TYPE_CHECKING:
    from .connection import Connection

log = logging.getLogger("agentevents.hub")


@dataclass(frozen=True)
class Notices:
    """A channel that is not a thread's: what to do with its messages, and after each (re)subscription."""

    on_message: Callable[[bytes], None]
    on_subscribed: Callable[[], None] = lambda: None


class Hub:
    def __init__(self, redis: aioredis.Redis, server_id: str, notices: dict[str, Notices] | None = None) -> None:
        self.redis = redis
        # Every gateway listens on its own channel too, so the pub/sub connection always exists.
        self.own_channel = f"ae:gw:{server_id}"
        self.notices = {name.encode(): handler for name, handler in (notices or {}).items()}
        self.local: dict[str, set[Connection]] = defaultdict(set)
        self.pubsub = redis.pubsub()
        self._confirm: dict[bytes, asyncio.Future[None]] = {}
        self._resync: set[bytes] = set()
        self._task: asyncio.Task[None] | None = None
        self.healthy = False

    async def start(self) -> None:
        try:
            await self.pubsub.subscribe(self.own_channel, *self.notices)
            self.healthy = True
        except (RedisError, OSError) as exc:
            log.warning("hub_start_without_redis error=%s", exc)
        self._task = asyncio.create_task(self._read(), name="hub-reader")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.pubsub.aclose()

    async def join(self, thread_id: str, conn: Connection) -> None:
        """Add a connection to a thread; returns once Redis confirms the channel subscription."""
        members = self.local[thread_id]
        members.add(conn)
        if len(members) == 1:
            await self._subscribe(channel(thread_id))

    async def leave(self, thread_id: str, conn: Connection) -> None:
        members = self.local.get(thread_id)
        if not members:
            return
        members.discard(conn)
        if not members:
            del self.local[thread_id]
            with contextlib.suppress(RedisError, OSError):
                await self.pubsub.unsubscribe(channel(thread_id))

    async def _subscribe(self, name: str) -> None:
        waiter = self._confirm.get(name.encode())
        if waiter is None or waiter.done():
            waiter = asyncio.get_running_loop().create_future()
            self._confirm[name.encode()] = waiter
        await self.pubsub.subscribe(name)
        await asyncio.wait_for(asyncio.shield(waiter), timeout=5)

    async def _read(self) -> None:
        backoff = 0.1
        while True:
            try:
                if self.pubsub.connection is None:
                    await self._reconnect()
                    continue
                # A blocking read: no timer per message (a Redis that goes away closes the socket,
                # which ends the read with an error; the connection has TCP keepalive).
                message = await self.pubsub.get_message(timeout=None)
                if not self.healthy:
                    self.healthy = True
                    log.info("hub_connected threads=%d", len(self.local))
                backoff = 0.1
                if message is not None:
                    self._handle(message)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self.healthy:
                    log.warning("hub_disconnected error=%s", exc)
                self.healthy = False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                await self._reconnect()

    async def _reconnect(self) -> None:
        with contextlib.suppress(Exception):
            await self.pubsub.aclose()
        self.pubsub = self.redis.pubsub()
        names = [channel(t) for t in self.local]
        try:
            # Each thread catches up from its stream once its subscription is confirmed.
            self._resync = {n.encode() for n in names}
            await self.pubsub.subscribe(self.own_channel, *self.notices, *names)
            log.info("hub_reconnected threads=%d", len(names))
        except (RedisError, OSError):
            return

    def _handle(self, message: dict) -> None:
        kind = message.get("type")
        name = message.get("channel")
        handler = self.notices.get(name)
        if handler is not None:
            try:
                if kind == "subscribe":
                    handler.on_subscribed()
                elif kind == "message":
                    handler.on_message(message["data"])
            except Exception:  # one bad notice must not stop the delivery of events
                log.exception("notice_failed channel=%s", name)
            return
        if name == self.own_channel.encode():
            return
        if kind == "subscribe":
            waiter = self._confirm.pop(name, None)
            if waiter and not waiter.done():
                waiter.set_result(None)
            # No join waits for it: the client re-subscribed by itself after a reconnect (its
            # retry policy), so events published meanwhile must be fetched as after _reconnect.
            if name in self._resync or waiter is None:
                self._resync.discard(name)
                thread_id = thread_of_channel(name.decode())
                for conn in list(self.local.get(thread_id, ())):
                    conn.catch_up(thread_id)
            return
        if kind != "message":
            return
        thread_id = thread_of_channel(name.decode())
        members = self.local.get(thread_id)
        if not members:
            return
        conns = list(members)
        for raw in split_payloads(message["data"]):  # one publish call's batch of the thread, in order
            seq, event_id = peek_head(raw)
            for conn in conns:
                conn.on_live(thread_id, seq, event_id, raw)
