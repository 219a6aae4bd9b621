"""The systems side by side: how each is started, how a connection joins its stream, how an event
is read, who publishes, which processes count.

  raw-memory       ceiling: a bare websockets server making the events in memory
  raw-redis        ceiling: the same server behind one Redis pub/sub hop
  ours-direct      ours, bus path: events put into a ThreadPublisher per thread (batches while a
                   publish is at Redis), threads the clients ``subscribe``d to, the clients straight
                   on one gateway
  ours-haproxy     the same through HAProxy (both gateways)
  ours-each        the same as ours-direct, every event its own awaited Bus.publish_event
  ours-agent       ours, agent path: real runs of the ``scripted`` agent, through HAProxy
  socketio         python-socketio on aiohttp with AsyncRedisManager
  channels-core    Django Channels (uvicorn) with channels_redis RedisChannelLayer
  channels-pubsub  the same with RedisPubSubChannelLayer

Peers get a private redis-server on a free loopback port; ours is the native stack that is
already up (AE_STACK_OFFSET / AE_STACK_DIR say which).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import math
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from . import pacing, procs
from .harness import Client

PEERS = procs.BENCH_DIR / "peers"
THINKING_RATE = 20.0  # our thinking throttle's sustained rate per run (docs/protocol.md §10)
MAX_STEPS = 500  # steps per script (docs/conformance.md §2.3)


@dataclass
class Session:
    """N connections of one system, each on its own stream."""

    name: str
    streams: list[str]
    users: list[str] = field(default_factory=list)
    clients: list[Client] = field(default_factory=list)


def session_name() -> str:
    return uuid.uuid4().hex[:6]


# -- protocols --------------------------------------------------------------------------------

class RawProtocol:
    def __init__(self, port: int) -> None:
        self.port = port

    def url(self, client: Client) -> str:
        return f"ws://{procs.HOST}:{self.port}/s/{client.stream}"

    def headers(self, client: Client) -> None:
        return None

    async def join(self, client: Client) -> None:
        if orjson.loads(await client.ws.recv()) != {"ready": True}:
            raise RuntimeError("the raw server did not say ready")

    def parse(self, client: Client, message: str | bytes) -> tuple[str, int, float] | None:
        obj = orjson.loads(message)
        return obj["s"], obj["q"], obj["t"]


class SocketIOProtocol:
    """Engine.IO 4 / Socket.IO 5 over the WebSocket transport, the few packets this needs."""

    def __init__(self, port: int) -> None:
        self.port = port

    def url(self, client: Client) -> str:
        return f"ws://{procs.HOST}:{self.port}/socket.io/?EIO=4&transport=websocket"

    def headers(self, client: Client) -> None:
        return None

    async def join(self, client: Client) -> None:
        ws = client.ws
        opening = await ws.recv()
        if not str(opening).startswith("0"):
            raise RuntimeError(f"no Engine.IO open packet: {opening!r}")
        await ws.send("40")
        await self._until(client, "40")
        await ws.send("421" + orjson.dumps(["join", client.stream]).decode())
        await self._until(client, "431")

    @staticmethod
    async def _until(client: Client, prefix: str) -> None:
        while True:
            message = str(await client.ws.recv())
            if message == "2":
                await client.ws.send("3")
            elif message.startswith(prefix):
                return
            elif message.startswith("44"):
                raise RuntimeError(f"socket.io refused: {message}")

    def parse(self, client: Client, message: str | bytes) -> tuple[str, int, float] | None:
        if message[:2] == "42":
            obj = orjson.loads(message[2:])[1]
            return obj["s"], obj["q"], obj["t"]
        if message == "2":
            client.send_soon("3")
        return None


class ChannelsProtocol:
    def __init__(self, port: int) -> None:
        self.port = port

    def url(self, client: Client) -> str:
        return f"ws://{procs.HOST}:{self.port}/ws/{client.stream}"

    def headers(self, client: Client) -> None:
        return None

    async def join(self, client: Client) -> None:
        return None  # the consumer joined its group before it accepted

    def parse(self, client: Client, message: str | bytes) -> tuple[str, int, float] | None:
        obj = orjson.loads(message)
        return obj["s"], obj["q"], obj["t"]


class OursProtocol:
    """Our protocol (docs/protocol.md): a JWT in the handshake, ``connection_established``, then
    ``subscribe`` to the client's thread; events carry the thread's ``seq``."""

    def __init__(self, port: int, tokens: dict[str, str]) -> None:
        self.port = port
        self.tokens = tokens  # stream (thread id) -> token of its owner

    def url(self, client: Client) -> str:
        return f"ws://{procs.HOST}:{self.port}/ws"

    def headers(self, client: Client) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[client.stream]}"}

    async def join(self, client: Client) -> None:
        first = orjson.loads(await client.ws.recv())
        if first.get("type") != "connection_established":
            raise RuntimeError(f"unexpected first frame {first}")
        subscribe = {"type": "subscribe", "request_id": "s", "thread_id": client.stream}
        await client.ws.send(orjson.dumps(subscribe).decode())
        while True:
            frame = orjson.loads(await client.ws.recv())
            if frame.get("type") == "subscribed":
                return
            if frame.get("type") == "error":
                raise RuntimeError(f"subscribe refused: {frame}")

    def parse(self, client: Client, message: str | bytes) -> tuple[str, int, float] | None:
        obj = orjson.loads(message)
        seq = obj.get("seq")
        if seq is None:
            return None
        return obj["thread_id"], seq, obj["data"]["metadata"]["t"]


def event_time(stamp: str) -> float:
    """Unix seconds of an event ``timestamp`` (millisecond precision, cut, not rounded: the middle
    of its millisecond is the unbiased estimate)."""
    return datetime.fromisoformat(stamp).timestamp() + 0.0005


class RunRefused(Exception):
    def __init__(self, frame: dict[str, Any]) -> None:
        super().__init__(f"{frame.get('code')}: {frame.get('message')}")
        self.code = frame.get("code")
        self.retry_after_s = (frame.get("details") or {}).get("retry_after_ms", 200) / 1000


class AgentRun:
    __slots__ = ("request_id", "run_id", "accepted", "completed", "sent_at", "completed_at", "event_count")

    def __init__(self, request_id: str) -> None:
        loop = asyncio.get_running_loop()
        self.request_id = request_id
        self.run_id: str | None = None
        self.accepted: asyncio.Future[None] = loop.create_future()
        self.completed: asyncio.Future[dict[str, Any]] = loop.create_future()
        self.sent_at = time.time()
        self.completed_at = 0.0
        self.event_count = 0


class AgentState:
    def __init__(self) -> None:
        self.run: AgentRun | None = None
        self.started = 0
        self.events = 0  # event_count of the runs completed in this window
        self.runs_done = 0
        self.unfinished = 0
        self.unanswered = 0

    async def start(self, client: Client, steps: list[dict[str, Any]], timeout_s: float) -> AgentRun:
        self.started += 1
        run = self.run = AgentRun(f"r{self.started}")
        await client.ws.send(orjson.dumps({
            "type": "start_agent", "request_id": run.request_id, "agent_type": "scripted", "message": "bench",
            "thread_id": client.stream, "options": {"steps": steps, "timeout_s": timeout_s}}).decode())
        await run.accepted
        return run

    def on_frame(self, obj: dict[str, Any]) -> None:
        run = self.run
        if run is None:
            return
        kind = obj.get("type")
        if kind == "run_accepted" and obj.get("request_id") == run.request_id:
            run.run_id = obj["run_id"]
            if not run.accepted.done():
                run.accepted.set_result(None)
        elif kind == "error" and obj.get("request_id") == run.request_id and not run.accepted.done():
            run.accepted.set_exception(RunRefused(obj))
        elif kind == "agent_completed" and obj.get("run_id") == run.run_id and not run.completed.done():
            run.completed_at = time.time()
            run.event_count = int(obj["data"].get("event_count", 0))
            self.events += run.event_count
            self.runs_done += 1
            run.completed.set_result(obj)


class OursAgentProtocol(OursProtocol):
    """The agent path: the connection starts runs in its thread (``start_agent`` follows it)."""

    async def join(self, client: Client) -> None:
        first = orjson.loads(await client.ws.recv())
        if first.get("type") != "connection_established":
            raise RuntimeError(f"unexpected first frame {first}")
        client.state = AgentState()

    def parse(self, client: Client, message: str | bytes) -> tuple[str, int, float] | None:
        obj = orjson.loads(message)
        seq = obj.get("seq")
        if seq is None:
            client.state.on_frame(obj)
            return None
        if obj["type"] == "agent_completed":
            client.state.on_frame(obj)
        return obj["thread_id"], seq, event_time(obj["timestamp"])


# -- agent scripts ----------------------------------------------------------------------------

def paced_steps(rate: float, duration_s: float, pairs: int = 50) -> tuple[list[dict[str, Any]], str]:
    """A script that emits about ``rate`` events/s for at least ``duration_s``, and the event type it
    uses: at most ``pairs`` (events, sleep) pairs, the events of a pair back to back (a ``repeat``).

    Few steps, because the worker validates a script at about a millisecond per step before the run
    starts. Within the thinking throttle's sustained rate it thinks; above it, where thoughts would be
    coalesced, it sends recoverable ``error`` steps (``agent_error``), which the throttle does not hold
    back, at least 5 ms of them at a time so the worker's sleeps stay above timer resolution."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    pairs = max(1, min(pairs, MAX_STEPS // 2))
    thinking = rate <= THINKING_RATE
    batch = max(1 if thinking else math.ceil(rate * 0.005), math.ceil(rate * duration_s / pairs))
    one = {"think": "t"} if thinking else {"error": {"code": "bench", "message": "m"}}
    step = one if batch == 1 else {"repeat": batch, "step": one}
    count = max(1, min(pairs, math.ceil(duration_s * rate / batch)))
    steps: list[dict[str, Any]] = []
    for _ in range(count):
        steps += [step, {"sleep": round(batch / rate, 6)}]
    return steps, "agent_thinking" if thinking else "agent_error"


def pairs_for(clients: int) -> int:
    """Pairs per paced script: smooth pacing for few clients, little validation work for many."""
    return max(2, min(50, 400 // max(1, clients)))


BURST_STEPS = [{"burst": 48}]  # inside the throttle's burst of 50: nothing coalesced
UNTHROTTLED_EVENTS = 2000
UNTHROTTLED_STEPS = [{"repeat": UNTHROTTLED_EVENTS, "step": {"error": {"code": "bench", "message": "m"}}}]


# -- publishers -------------------------------------------------------------------------------

class ProcessPublisher:
    """benchmarks/peers/publisher.py as a subprocess, driven over its stdin and stdout."""

    def __init__(self, target: str, redis_url: str, log: Path, env: dict[str, str] | None = None) -> None:
        self.target, self.redis_url, self.log, self.env = target, redis_url, log, env
        self.proc: subprocess.Popen | None = None

    async def start(self) -> None:
        self.proc = procs.start([procs.python(), str(PEERS / "publisher.py"), "--target", self.target,
                                 "--redis-url", self.redis_url], self.log, env=self.env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        answer = await self._read(60)
        if not answer.get("ready"):
            raise RuntimeError(f"publisher {self.target} did not start: {answer}")

    async def _read(self, timeout_s: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), timeout_s)
        if not line:
            raise RuntimeError(f"publisher {self.target} exited ({self.proc.poll()}); see {self.log.name}")
        return json.loads(line)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def run(self, session: Session, rate: float, duration_s: float) -> int:
        assert self.proc is not None and self.proc.stdin is not None
        command = {"op": "run", "streams": session.streams, "users": session.users, "rate": rate,
                   "duration": duration_s}
        self.proc.stdin.write(orjson.dumps(command) + b"\n")
        self.proc.stdin.flush()
        return int((await self._read(duration_s + 120))["published"])

    async def close(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(Exception):
                self.proc.stdin.write(b'{"op": "quit"}\n')
                self.proc.stdin.flush()
                await asyncio.to_thread(self.proc.wait, 5)
            procs.stop(self.proc)
            self.proc = None


class ControlPublisher:
    """The raw-memory server publishes itself; this asks it to, over its /control socket."""

    pid = None  # the publisher is the server itself, already counted

    def __init__(self, port: int) -> None:
        self.port = port
        self.ws = None

    async def start(self) -> None:
        self.ws = await connect(f"ws://{procs.HOST}:{self.port}/control", compression=None, proxy=None,
                                ping_interval=None, max_size=2**24)

    async def run(self, session: Session, rate: float, duration_s: float) -> int:
        await self.ws.send(orjson.dumps({"op": "run", "streams": session.streams, "rate": rate,
                                         "duration": duration_s}).decode())
        answer = orjson.loads(await asyncio.wait_for(self.ws.recv(), duration_s + 120))
        return int(answer["published"])

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()


class AgentDriver:
    """The agent path's publisher is the worker: every client runs scripts in its thread, one
    run after the other, until the time is up (then it cancels the run in progress). What was
    published is the sum of the runs' ``event_count``."""

    pid = None

    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = BURST_STEPS
        self.event_kind = "agent_thinking"
        self.unfinished = 0
        self.unanswered = 0
        self.runs = 0

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def pace(self, rate: float, clients: int, duration_s: float) -> None:
        if rate > 0:
            self.steps, self.event_kind = paced_steps(rate / clients, duration_s, pairs_for(clients))
        else:
            self.steps, self.event_kind = BURST_STEPS, "agent_thinking"

    async def run(self, session: Session, rate: float, duration_s: float, drain_s: float = 15.0) -> int:
        self.pace(rate, len(session.clients), duration_s)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + duration_s
        timeout_s = round(duration_s + 2, 3)
        for c in session.clients:
            c.state.events = c.state.runs_done = 0

        async def one(client: Client) -> None:
            state: AgentState = client.state
            while loop.time() < deadline and client.open_now:
                try:
                    run = await asyncio.wait_for(state.start(client, self.steps, timeout_s), 30)
                except RunRefused as refused:
                    await asyncio.sleep(refused.retry_after_s)
                    continue
                except (TimeoutError, ConnectionClosed):
                    state.unanswered += 1  # the connection is gone, or the gateway did not answer
                    break
                try:
                    await asyncio.wait_for(asyncio.shield(run.completed), max(0.0, deadline - loop.time()))
                except TimeoutError:
                    with contextlib.suppress(Exception):
                        await client.ws.send(orjson.dumps({"type": "cancel_agent", "request_id": "c",
                                                           "run_id": run.run_id}).decode())
                    break
            run = state.run
            if run is not None and not run.completed.done() and client.open_now:
                try:
                    await asyncio.wait_for(asyncio.shield(run.completed), drain_s)
                except TimeoutError:
                    state.unfinished += 1

        for c in session.clients:
            c.state.unfinished = c.state.unanswered = 0
        await asyncio.gather(*(one(c) for c in session.clients))
        self.unfinished = sum(c.state.unfinished for c in session.clients)
        self.unanswered = sum(c.state.unanswered for c in session.clients)
        self.runs = sum(c.state.runs_done for c in session.clients)
        return sum(c.state.events for c in session.clients)


# -- systems ----------------------------------------------------------------------------------

class System:
    key = ""
    label = ""
    kind = "peer"  # ceiling | ours | peer
    memory_family = ""  # systems sharing one server measure memory once
    memory_label = ""  # how the memory table names that server (default: the label)
    notes: tuple[str, ...] = ()

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.processes: list[subprocess.Popen] = []
        self.publisher: Any = None
        self.port = 0

    async def start(self) -> None: ...

    async def stop(self) -> None:
        if self.publisher is not None:
            await self.publisher.close()
            self.publisher = None
        for proc in reversed(self.processes):
            procs.stop(proc)
        self.processes.clear()

    def cpu_pids(self) -> dict[str, int]:
        """The processes whose CPU counts as the system's, by role."""
        return {}

    def rss_pids(self) -> dict[str, int]:
        """The processes holding the connections (their RSS growth is the memory per connection)."""
        return {}

    def publisher_pid(self) -> int | None:
        return getattr(self.publisher, "pid", None)

    def protocol(self, session: Session) -> Any: ...

    def new_session(self, n: int, first_index: int = 0) -> Session:
        name = session_name()
        return Session(name, [f"{name}-{first_index + i:05d}" for i in range(n)])

    async def prepare(self, session: Session) -> None:
        return None

    async def settle(self, limit_s: float) -> None:
        """Wait for the work an event leaves behind (ours: archive and audit writes)."""
        return None

    def versions(self) -> dict[str, str]:
        return {}


class _RedisPeer(System):
    async def start_redis(self) -> None:
        proc, self.redis_port = await procs.start_redis(self.logs, self.key)
        self.redis_proc = proc
        self.processes.append(proc)
        self.redis_url = f"redis://{procs.HOST}:{self.redis_port}/0"

    async def start_server(self, args: list[str], name: str) -> None:
        self.port = procs.free_port()
        proc = procs.start([procs.python(), *args, "--port", str(self.port)], self.logs / f"{self.key}.log")
        self.server_proc = proc
        self.processes.append(proc)
        await procs.wait_port(self.port, proc, name, 60)

    def cpu_pids(self) -> dict[str, int]:
        pids = {"server": self.server_proc.pid}
        if getattr(self, "redis_proc", None) is not None:
            pids["redis"] = self.redis_proc.pid
        return pids

    def rss_pids(self) -> dict[str, int]:
        return {"server": self.server_proc.pid}


class RawMemory(_RedisPeer):
    key, label, kind, memory_family = "raw-memory", "raw websockets, from memory", "ceiling", "raw-memory"
    notes = ("the server makes the events itself, so its CPU includes the publisher's work",)

    async def start(self) -> None:
        await self.start_server([str(PEERS / "raw_ws.py"), "--mode", "memory"], "raw websockets server")
        self.publisher = ControlPublisher(self.port)
        await self.publisher.start()

    def protocol(self, session: Session) -> RawProtocol:
        return RawProtocol(self.port)


class RawRedis(_RedisPeer):
    key, label, kind, memory_family = "raw-redis", "raw websockets + Redis pub/sub hop", "ceiling", "raw-redis"

    async def start(self) -> None:
        await self.start_redis()
        await self.start_server([str(PEERS / "raw_ws.py"), "--mode", "redis", "--redis-url", self.redis_url],
                                "raw websockets server (redis)")
        self.publisher = ProcessPublisher("raw-redis", self.redis_url, self.logs / f"{self.key}-publisher.log")
        await self.publisher.start()

    def protocol(self, session: Session) -> RawProtocol:
        return RawProtocol(self.port)


class SocketIO(_RedisPeer):
    key, label, memory_family = "socketio", "python-socketio + AsyncRedisManager", "socketio"

    async def start(self) -> None:
        await self.start_redis()
        await self.start_server([str(PEERS / "socketio_app.py"), "--redis-url", self.redis_url],
                                "python-socketio server")
        self.publisher = ProcessPublisher("socketio", self.redis_url, self.logs / f"{self.key}-publisher.log")
        await self.publisher.start()

    def protocol(self, session: Session) -> SocketIOProtocol:
        return SocketIOProtocol(self.port)

    def versions(self) -> dict[str, str]:
        return _versions("python-socketio", "python-engineio", "aiohttp")


class _Channels(_RedisPeer):
    layer = ""

    async def start(self) -> None:
        await self.start_redis()
        await self.start_server([str(PEERS / "channels_app.py"), "--redis-url", self.redis_url, "--layer",
                                 self.layer], "Django Channels server")
        self.publisher = ProcessPublisher(f"channels-{self.layer}", self.redis_url,
                                          self.logs / f"{self.key}-publisher.log")
        await self.publisher.start()

    def protocol(self, session: Session) -> ChannelsProtocol:
        return ChannelsProtocol(self.port)

    def versions(self) -> dict[str, str]:
        return _versions("Django", "channels", "channels-redis", "uvicorn")


class ChannelsCore(_Channels):
    key, label, memory_family, layer = "channels-core", "Django Channels + RedisChannelLayer", "channels-core", "core"
    notes = ("RedisChannelLayer with capacity 2000 (default 100); the consumers of one process share one Redis "
             "list, so the capacity bounds the whole server's backlog, and group_send drops silently beyond it",)


class ChannelsPubSub(_Channels):
    key, label, memory_family, layer = ("channels-pubsub", "Django Channels + RedisPubSubChannelLayer",
                                        "channels-pubsub", "pubsub")


class _Ours(System):
    kind, memory_family = "ours", "ours"
    memory_label = "ours (one gateway; idle connections subscribed to their threads)"
    via_haproxy = False
    permissions: tuple[str, ...] = ()

    async def start(self) -> None:
        from agentevents.bus import Bus
        from agentevents.bus import connect as redis_connect
        from agentevents.stack import native
        from agentevents.testing.tokens import TokenFactory

        self.native = native
        health = native.health()
        if not all(health.values()):
            down = ", ".join(name for name, ok in health.items() if not ok)
            raise RuntimeError(f"the native stack is not up ({down} unhealthy): start it with "
                               "`agentevents stack up` (AE_STACK_OFFSET / AE_STACK_DIR pick which)")
        self.env = native.stack_env()
        self.tokens = TokenFactory(self.env["AE_JWT_SECRET"])
        self.redis = redis_connect(self.env["AE_REDIS_URL"])
        self.bus = Bus(self.redis)
        self.gateway_port = native.GATEWAYS["gateway1"]
        self.port = native.LB_PORT if self.via_haproxy else self.gateway_port
        self.token_of: dict[str, str] = {}
        self.pids = {name: native.component_pid(name)
                     for name in (*native.GATEWAYS, *native.WORKERS, "redis", "postgres", "haproxy")}

    async def restart_gateways(self) -> None:
        """Fresh gateway processes, so the memory a connection costs is not hidden in what earlier
        connections left to the allocator."""
        native = self.native
        for name in native.GATEWAYS:
            with contextlib.redirect_stdout(io.StringIO()):  # supervisorctl's "stopped / started"
                await asyncio.to_thread(native.control, "restart", name)
        for name, port in native.GATEWAYS.items():
            deadline = time.monotonic() + 30
            while not _http_json(port, "/health"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not come back")
                await asyncio.sleep(0.1)
        deadline = time.monotonic() + 30
        while not _http_json(native.LB_PORT, "/health"):  # HAProxy saw them up again
            if time.monotonic() > deadline:
                raise RuntimeError("HAProxy does not reach the gateways")
            await asyncio.sleep(0.1)
        for name in native.GATEWAYS:
            self.pids[name] = native.component_pid(name)

    async def stop(self) -> None:
        await super().stop()
        with contextlib.suppress(Exception):
            await self.redis.aclose()

    def new_session(self, n: int, first_index: int = 0) -> Session:
        name = session_name()
        streams = [uuid.uuid4().hex for _ in range(n)]
        users = [f"bench-{name}-{first_index + i}" for i in range(n)]
        return Session(name, streams, users)

    async def prepare(self, session: Session) -> None:
        """Each stream is a thread of its own user (claimed as a new thread), with a token for them."""
        from agentevents.protocol.envelope import utc_timestamp
        gate = asyncio.Semaphore(100)

        async def claim(tid: str, user: str) -> None:
            async with gate:
                await self.bus.claim_thread(tid, user, utc_timestamp())

        await asyncio.gather(*(claim(t, u) for t, u in zip(session.streams, session.users, strict=True)))
        for tid, user in zip(session.streams, session.users, strict=True):
            self.token_of[tid] = self.tokens.token(user, permissions=list(self.permissions), ttl_s=4 * 3600)

    def cpu_pids(self) -> dict[str, int]:
        if self.via_haproxy:
            return dict(self.pids)
        return {name: pid for name, pid in self.pids.items() if name != "haproxy"}

    def rss_pids(self) -> dict[str, int]:
        return {"gateway1": self.pids["gateway1"]}

    def memory_protocol(self, session: Session) -> OursProtocol:
        """Idle connections go straight to one gateway (HAProxy's maxconn is below 10,000)."""
        return OursProtocol(self.gateway_port, self.token_of)

    async def settle(self, limit_s: float) -> None:
        native = self.native
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            pending = 0
            for port in native.GATEWAYS.values():
                pending += int((_http_json(port, "/health") or {}).get("audit_pending", 0))
            for port in native.WORKERS.values():
                body = _http_json(port, "/health") or {}
                pending += int(body.get("records_pending", 0)) + int((body.get("archive") or {}).get("backlog", 0))
            if pending == 0:
                return
            await asyncio.sleep(0.2)

    def versions(self) -> dict[str, str]:
        return _versions("agentevents", "redis", "asyncpg")


class OursBus(_Ours):
    target = "ours-bus"
    notes = ("stack Redis runs with appendonly + appendfsync always; each event is also appended to the "
             "thread's stream and the archive outbox, archived to PostgreSQL and every delivery audited there",
             "publisher: a ThreadPublisher per stream (agentevents.publisher, as the agent path's bridge): an "
             f"event is put in its stream's queue (at most {pacing.QUEUE_PER_STREAM} waiting, then the lane waits) and "
             "the queue leaves in one publish call while the previous one is at Redis; its CPU is not counted "
             "as the system's")

    async def start(self) -> None:
        await super().start()
        self.publisher = ProcessPublisher(self.target, self.env["AE_REDIS_URL"],
                                          self.logs / f"{self.key}-publisher.log",
                                          env=procs.peer_env())
        await self.publisher.start()

    def protocol(self, session: Session) -> OursProtocol:
        return OursProtocol(self.port, self.token_of)


class OursDirect(OursBus):
    key, label = "ours-direct", "ours, bus path, straight to one gateway"


class OursHAProxy(OursBus):
    key, label, via_haproxy = "ours-haproxy", "ours, bus path, through HAProxy", True


class OursEach(OursBus):
    key, label, target = "ours-each", "ours, bus path, one publish call per event, straight to one gateway", \
        "ours-bus-each"
    notes = (OursBus.notes[0],
             "publisher: Bus.publish_event awaited for every event (one round trip with Redis's "
             "fsync per event of a stream); its CPU is not counted as the system's")


class OursAgent(_Ours):
    key, label, via_haproxy = "ours-agent", "ours, agent path (scripted runs), through HAProxy", True
    permissions = ("agents:script",)
    notes = ("saturation: every client runs `{\"burst\": 48}` scripts back to back (48 thoughts stay inside "
             "the thinking throttle's burst of 50)",
             "fixed rates: paced scripts; `think` steps while a run's rate is within the throttle's 20/s, "
             "recoverable `error` steps (agent_error) above it",
             "latency from the event's millisecond `timestamp` (+0.5 ms, the middle of its millisecond)",
             "the delivered rate includes each run's start (queued, taken by a worker, agent_started); "
             "runs still going when the time is up are cancelled",
             "the stack runs 2 workers x 200 concurrent runs: 1,000 clients' paced runs do not all run at once")

    async def start(self) -> None:
        await super().start()
        self.publisher = AgentDriver()

    def protocol(self, session: Session) -> OursAgentProtocol:
        return OursAgentProtocol(self.port, self.token_of)


SYSTEMS: dict[str, type[System]] = {cls.key: cls for cls in (
    RawMemory, RawRedis, OursDirect, OursHAProxy, OursEach, OursAgent, SocketIO, ChannelsCore, ChannelsPubSub)}


def _http_json(port: int, path: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://{procs.HOST}:{port}{path}", timeout=2) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError):
        return None


def _versions(*names: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version
    out = {}
    for name in names:
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    return out
