"""One WebSocket connection: its user, its thread cursors, its bounded outbound queue.

Per subscribed thread a ``Cursor`` remembers the last seq written to this socket. Live events
go through the rule in ``protocol.replay.next_deliverable``: the next seq is delivered, an old
one (a redelivered copy) is dropped, and a jump triggers a fill from history first — so a
connection sees every thread gapless, in order, once. While a fill (or a replay) runs, live events
wait in the cursor, at most a quarter of the outbound queue of them (so releasing them never
overflows it); newer ones are not kept but read from history once the fill is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from ..auth import Claims
from ..logs import fields
from ..metrics import EVENTS_DELIVERED, SLOW_CONSUMERS
from ..protocol.codes import CloseCode
from ..protocol.envelope import peek_head
from ..protocol.limits import TokenBucket
from ..protocol.replay import next_deliverable

if TYPE_CHECKING:
    from .server import Gateway

log = logging.getLogger("agentevents.connection")

MAX_PENDING = 500  # live events held per followed thread while a fill or replay runs (default queue / 4)


@dataclass(slots=True)
class Cursor:
    last: int = 0
    busy: bool = True
    pending: dict[int, tuple[str, bytes]] = field(default_factory=dict)
    behind: int = 0  # the newest seq that found no room in ``pending``: read from history afterwards
    limit: int = MAX_PENDING

    def hold(self, seq: int, event_id: str, text: bytes) -> bool:
        """Keep a live event until the cursor is free; False when it is a copy of one already written."""
        if seq <= self.last:
            return False
        if seq not in self.pending:
            if len(self.pending) >= self.limit:
                self.behind = max(self.behind, seq)
                return True
            self.pending[seq] = (event_id, text)
        return True


@dataclass(slots=True)
class Outbound:
    text: bytes
    thread_id: str | None = None
    seq: int = 0
    event_id: str | None = None


class WireClosed(Exception):
    """The socket can take no more frames."""


class Wire:
    """Where a connection's frames go: a websockets connection, several frames in one write.

    ``ready`` says whether frames can be written right now without waiting (open, not paused by
    the transport's flow control); ``write`` then writes them in one go, in order, as text frames
    (the payloads are UTF-8 JSON already); ``writable`` waits until ``ready`` or raises WireClosed.
    """

    __slots__ = ("ws",)

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws

    def ready(self) -> bool:
        ws = self.ws
        return ws.protocol.state is State.OPEN and not ws.paused and ws.send_in_progress is None

    def write(self, texts: list[bytes]) -> None:
        ws = self.ws
        for text in texts:
            ws.protocol.send_text(text)
        chunks = ws.protocol.data_to_send()
        if all(chunks):
            ws.transport.write(b"".join(chunks))
        else:  # an end of stream among them (never after text frames on an open connection)
            for chunk in chunks:
                if chunk:
                    ws.transport.write(chunk)
                elif ws.transport.can_write_eof():
                    ws.transport.write_eof()
                else:
                    ws.transport.close()

    async def writable(self) -> None:
        ws = self.ws
        while True:
            if ws.protocol.state is not State.OPEN:
                raise WireClosed
            if ws.send_in_progress is not None:
                await asyncio.shield(ws.send_in_progress)
            elif ws.paused:
                await ws.drain()
            else:
                return

    async def close(self, code: int, reason: str) -> None:
        await self.ws.close(code, reason)


class Connection:
    # Slots, and lanes and task sets made only when used: what an idle connection holds is small.
    __slots__ = ("gateway", "ws", "wire", "claims", "id", "user_id", "cursors", "control", "events", "max_events",
                 "_writer", "_room", "inbound", "errors", "duplicates_dropped", "closing", "_tasks", "expiry",
                 "ranges")

    def __init__(self, gateway: Gateway, ws: Any, claims: Claims, connection_id: str) -> None:
        self.gateway = gateway
        self.ws = ws
        self.wire: Any = ws if hasattr(ws, "writable") else Wire(ws)
        self.claims = claims
        self.id = connection_id
        self.user_id = claims.user_id
        self.cursors: dict[str, Cursor] = {}
        # Two lanes: answers and errors overtake queued events; events (and the frames that must
        # stay in their order, like replay_complete) wait in a bounded queue. Frames are written at
        # once while nothing waits and the socket takes them; a writer task exists only while some wait.
        self.control: deque[Outbound] | None = None
        self.events: deque[Outbound] | None = None
        self.max_events = gateway.settings.outbound_queue
        self._writer: asyncio.Task[None] | None = None
        self._room: asyncio.Future[None] | None = None  # replays wait on it while the event lane is full
        self.inbound = TokenBucket(rate=20.0, burst=60.0)
        self.errors = TokenBucket(rate=1.0, burst=50.0)
        self.duplicates_dropped = 0
        self.closing = False
        self._tasks: set[asyncio.Task[Any]] | None = None
        self.expiry: asyncio.TimerHandle | None = None  # the token's expiry check (gateway._expire_later)
        # The delivery audit as ranges: per thread, the seqs written one after another since the
        # last flush, [first seq, last seq, first time, last time] (gateway.audit_ranges).
        self.ranges: dict[str, list[Any]] = {}

    def log_fields(self) -> str:
        return fields(connection_id=self.id, user_id=self.user_id)

    # -- outbound ---------------------------------------------------------------------------
    def send_frame(self, frame: dict[str, Any], *, in_order: bool = False) -> None:
        """Answers and errors go first; ``in_order`` frames keep their place among events."""
        if "request_id" in frame and frame["request_id"] is None:
            frame = {k: v for k, v in frame.items() if k != "request_id"}
        item = Outbound(orjson.dumps(frame))
        if in_order:
            self._enqueue(item)
        elif not self.closing:
            if self._write_if_idle(item):
                return
            if self.control is None:
                self.control = deque()
            self.control.append(item)
            self._kick()

    def _enqueue(self, item: Outbound, *, direct: bool = True) -> None:
        """Queue an event (or an in-order frame); written at once when nothing waits, unless
        ``direct`` is False (replays: they go through the lane, so answers can overtake them)."""
        if self.closing:
            return
        if direct and self._write_if_idle(item):
            return
        if self.events is None:
            self.events = deque()
        if len(self.events) >= self.max_events:
            SLOW_CONSUMERS.inc()
            log.warning("slow_consumer %s queued=%d", self.log_fields(), len(self.events))
            self.close(CloseCode.SLOW_CONSUMER, "slow consumer: outbound queue full")
            return
        self.events.append(item)
        self._kick()

    def _write_if_idle(self, item: Outbound) -> bool:
        """Write one frame at once if nothing waits before it and the socket takes it."""
        return self._writer is None and not self.control and not self.events and self._write_now([item])

    def _write_now(self, items: list[Outbound]) -> bool:
        """Write frames at once when the socket takes them without waiting; False if it does not."""
        wire = self.wire
        if not wire.ready():
            return False
        wire.write([item.text for item in items])
        self._delivered(items)
        return True

    def _delivered(self, items: list[Outbound]) -> None:
        now = time.time()
        count = 0
        for item in items:
            if item.event_id is None:
                continue
            count += 1
            span = self.ranges.get(item.thread_id)  # type: ignore[arg-type]
            if span is not None and item.seq == span[1] + 1:
                span[1] = item.seq
                span[3] = now
                continue
            if span is not None:
                self.gateway.audit_range(self, item.thread_id, span)
            else:
                self.gateway.audit_dirty.add(self)
            self.ranges[item.thread_id] = [item.seq, item.seq, now, now]  # type: ignore[index]
        if count:
            EVENTS_DELIVERED.inc(count)

    def flush_ranges(self) -> None:
        """Hand the ranges written so far to the audit writer (every flush interval, and at the end)."""
        for thread_id, span in self.ranges.items():
            self.gateway.audit_range(self, thread_id, span)
        self.ranges.clear()

    def _kick(self) -> None:
        if self._writer is None and not self.closing:
            self._writer = asyncio.create_task(self._write_queued())

    def _take(self, limit: int = 64) -> list[Outbound]:
        """The frames to write next: answers first, then events, in order."""
        batch: list[Outbound] = []
        control, events = self.control, self.events
        while control and len(batch) < limit:
            batch.append(control.popleft())
        while events and len(batch) < limit:
            batch.append(events.popleft())
        if not control:
            self.control = None
        if not events:
            self.events = None
        if self._room is not None and len(events or ()) < self.max_events // 4 and not self._room.done():
            self._room.set_result(None)
        return batch

    async def _write_queued(self) -> None:
        wire = self.wire
        try:
            while not self.closing or self.control or self.events:
                await wire.writable()
                batch = self._take()
                if not batch:
                    return
                wire.write([item.text for item in batch])
                self._delivered(batch)
                if self.events or self.control:
                    await asyncio.sleep(0)  # let the reader run between batches: its answers go first
        except (WireClosed, ConnectionClosed):
            self.closing = True
        finally:
            self._writer = None
            if self._room is not None and not self._room.done():
                self._room.set_result(None)

    async def _enqueue_paced(self, item: Outbound) -> None:
        """For replays: wait for room instead of overflowing the queue (and being called slow)."""
        while len(self.events or ()) >= self.max_events // 2 and not self.closing:
            if self._room is None or self._room.done():
                self._room = asyncio.get_running_loop().create_future()
            await self._room
        self._enqueue(item, direct=False)

    async def flushed(self, timeout_s: float) -> None:
        """Wait (at most ``timeout_s``) until the frames queued so far are written or cannot be."""
        writer = self._writer
        if writer is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(writer), timeout_s)

    def close(self, code: int, reason: str) -> None:
        if self.closing:
            return
        self.closing = True
        if self.control and self._writer is None and self.wire.ready():  # an error frame before the close
            batch, self.control = list(self.control), None
            self._write_now(batch)
        self.spawn(self.wire.close(code, reason))

    def spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        if self._tasks is None:
            self._tasks = set()
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def shutdown(self, flush_s: float = 1.0) -> None:
        """Leave every thread, stop what runs for this connection, and audit what it was sent."""
        self.closing = True
        for thread_id in list(self.cursors):
            await self.gateway.hub.leave(thread_id, self)
        self.cursors.clear()
        for task in list(self._tasks or ()):
            task.cancel()
        await self.flushed(flush_s)
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
        self.flush_ranges()
        self.gateway.audit_dirty.discard(self)

    # -- threads ----------------------------------------------------------------------------
    async def follow(self, thread_id: str, since: int | None, request_id: str | None,
                     hold: bool = False) -> dict[str, Any] | None:
        """Subscribe this connection to a thread.

        With ``since``: replay ``since+1..head`` then continue live, and return the replay
        report. Without: continue live from the current head. With ``hold``, live events wait
        until ``release`` (so an answer frame can go out before the first event).
        """
        cursor = self.cursors.get(thread_id)
        fresh = cursor is None
        try:
            if cursor is None:
                cursor = self.cursors[thread_id] = Cursor(limit=max(1, self.max_events // 4))
                await self.gateway.hub.join(thread_id, self)
            cursor.busy = True
            head = await self.gateway.bus.head_seq(thread_id)
        except BaseException:
            if fresh:  # leave no half-made subscription behind
                await self.unfollow(thread_id)
            elif cursor is not None:
                self._drain(thread_id, cursor)
            raise
        report = None
        if since is None:
            if fresh:
                cursor.last = head
        else:
            if not fresh:
                # What this connection already received is not sent again: one delivery per event.
                since = max(since, cursor.last)
            report = await self._fill(thread_id, cursor, since, head, request_id, replay=True)
        if not hold:
            self._drain(thread_id, cursor)
        return report

    def release(self, thread_id: str) -> None:
        cursor = self.cursors.get(thread_id)
        if cursor is not None:
            self._drain(thread_id, cursor)

    async def unfollow(self, thread_id: str) -> bool:
        if self.cursors.pop(thread_id, None) is None:
            return False
        await self.gateway.hub.leave(thread_id, self)
        return True

    def on_live(self, thread_id: str, seq: int, event_id: str, text: bytes) -> None:
        cursor = self.cursors.get(thread_id)
        if cursor is None:
            return
        if cursor.busy:
            if not cursor.hold(seq, event_id, text):
                self.duplicates_dropped += 1
            return
        verdict = next_deliverable(cursor.last, seq)
        if verdict == "deliver":
            cursor.last = seq
            self._enqueue(Outbound(text, thread_id, seq, event_id))
        elif verdict == "duplicate":
            self.duplicates_dropped += 1
        else:
            cursor.busy = True
            cursor.hold(seq, event_id, text)
            self.spawn(self._fill_gap(thread_id, cursor, seq - 1))

    def catch_up(self, thread_id: str) -> None:
        """After the hub lost Redis for a while: fetch whatever was published meanwhile."""
        cursor = self.cursors.get(thread_id)
        if cursor is None or cursor.busy:
            return
        cursor.busy = True

        async def go() -> None:
            try:
                head = await self.gateway.bus.head_seq(thread_id)
            except Exception as exc:  # the hub calls again after its next reconnect
                log.warning("catch_up_failed %s thread_id=%s error=%s", self.log_fields(), thread_id, exc)
                self._drain(thread_id, cursor)
                return
            await self._fill_gap(thread_id, cursor, head)

        self.spawn(go())

    async def _fill_gap(self, thread_id: str, cursor: Cursor, head: int) -> None:
        try:
            await self._fill(thread_id, cursor, cursor.last, head, None, replay=False)
        finally:
            self._drain(thread_id, cursor)

    async def _fill(self, thread_id: str, cursor: Cursor, since: int, head: int, request_id: str | None,
                    *, replay: bool) -> dict[str, Any]:
        started = time.monotonic()
        result = None
        for attempt in range(3):
            try:
                result = await self.gateway.history.fetch(thread_id, since, head)
                break
            except Exception as exc:
                log.warning("history_unavailable %s thread_id=%s attempt=%d error=%s", self.log_fields(),
                            thread_id, attempt + 1, exc)
                await asyncio.sleep(0.2 * (attempt + 1))
        complete = bool(result and result.complete)
        if result and complete:
            for seq, payload in result.events:
                await self._enqueue_paced(Outbound(payload, thread_id, seq, peek_head(payload)[1]))
        # Incomplete or not, the cursor moves to head: the report tells the client what it missed.
        cursor.last = max(cursor.last, head)
        report = {"type": "replay_complete", "thread_id": thread_id, "since_seq": since, "head_seq": head,
                  "count": len(result.events) if result and complete else 0, "complete": complete,
                  "duration_ms": int((time.monotonic() - started) * 1000)}
        if not complete:
            report["missing"] = (result.missing[:1] + result.missing[-1:]) if result else [since + 1, head]
            report["reason"] = "history_unavailable" if replay else "gap"
        if request_id is not None:
            report["request_id"] = request_id
        if replay or not complete:
            self.send_frame(report, in_order=True)
        self.gateway.count_replay(complete)
        return report

    def _drain(self, thread_id: str, cursor: Cursor) -> None:
        """Deliver events that arrived while the cursor was busy, in seq order."""
        while cursor.pending:
            seq = min(cursor.pending)
            event_id, text = cursor.pending.pop(seq)
            verdict = next_deliverable(cursor.last, seq)
            if verdict == "duplicate":
                self.duplicates_dropped += 1
                continue
            if verdict == "gap":
                cursor.pending[seq] = (event_id, text)
                self.spawn(self._fill_gap(thread_id, cursor, seq - 1))
                return
            cursor.last = seq
            self._enqueue(Outbound(text, thread_id, seq, event_id))
        if cursor.behind > cursor.last:
            # Live events came faster than the fill and were not kept: they are in history.
            self.spawn(self._fill_gap(thread_id, cursor, cursor.behind))
            return
        cursor.behind = 0
        cursor.busy = False
