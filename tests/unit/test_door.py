"""What a client can send never crashes the gateway nor grows it without bound (no I/O here).

- every frame is checked for size and nesting depth before anything recursive sees it;
- a cursor holds a bounded number of live events while it fills a gap, and still delivers all;
- a handshake that fails after ``process_request`` leaves nothing in the gateway;
- the tool rate limiter forgets idle (user, tool) buckets;
- a revocation notice closes exactly the connections of the revoked token or user.
"""

from __future__ import annotations

import asyncio
import gc
import time
import weakref
from typing import Any

import orjson
import pytest
from prometheus_client import REGISTRY
from wires import MemoryWire

from agentevents.auth import issue_token
from agentevents.config import Settings
from agentevents.gateway.connection import Connection
from agentevents.gateway.server import Gateway, GatewayConnection
from agentevents.protocol.codes import CloseCode, ErrorCode
from agentevents.protocol.limits import TokenBucket
from agentevents.protocol.messages import (
    MAX_DEPTH,
    MAX_MESSAGE_BYTES,
    ProtocolError,
    parse_client_message,
    too_deep,
)
from agentevents.protocol.replay import ReplayPlan, assemble
from agentevents.revocation import notice
from agentevents.tools.dispatcher import ToolRateLimiter

SECRET = "unit-test-secret-unit-test-secret"
THREAD = "5f0c3a1e9b7d4e2a8c6f1b3d5e7a9c0b"


def nested(depth: int, leaf: str = "1") -> str:
    """A JSON object ``depth`` levels deep: {"a":{"a":…1…}}."""
    return '{"a":' * depth + leaf + "}" * depth


def start_agent(options: str) -> str:
    return '{"type":"start_agent","request_id":"r1","agent_type":"math","message":"1+1","options":' + options + "}"


def refusal(frame: str | bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        parse_client_message(frame)
    return caught.value


# -- depth and size at the door ---------------------------------------------------------------

def test_options_up_to_the_limit_pass_and_can_be_serialized_again():
    # The message is level 1 and options level 2: options may hold MAX_DEPTH - 2 more levels.
    msg = parse_client_message(start_agent(nested(MAX_DEPTH - 1)))
    assert orjson.loads(orjson.dumps({"request": msg}))["request"] == msg  # what submit_run does with it


@pytest.mark.parametrize("depth", [MAX_DEPTH, 100, 254, 1000, 1022])
def test_deeper_options_are_malformed_and_name_the_field_and_the_limit(depth):
    err = refusal(start_agent(nested(depth)))
    assert err.code == ErrorCode.MALFORMED
    assert err.request_id == "r1"
    assert err.details == {"limit": MAX_DEPTH}
    assert "options" in err.message and str(MAX_DEPTH) in err.message


@pytest.mark.parametrize("field", ["thread_id", "since_seq", "request_id"])
def test_a_deep_list_in_a_field_the_schema_refuses_is_malformed_not_a_recursion_error(field):
    frame = '{"type":"subscribe","thread_id":"t1","' + field + '":' + "[" * 1000 + "]" * 1000 + "}"
    err = refusal(frame)
    assert err.code == ErrorCode.MALFORMED and field in err.message


def test_past_what_the_parser_accepts_is_malformed_too():
    assert refusal(start_agent(nested(5000))).code == ErrorCode.MALFORMED


def test_a_deep_top_level_array_is_refused_at_the_door():
    err = refusal("[" * 900 + "]" * 900)
    assert err.code == ErrorCode.MALFORMED and err.details == {"limit": MAX_DEPTH}


def test_wide_but_shallow_frames_pass_the_depth_check():
    steps = ",".join('{"think":"x"}' for _ in range(2000))
    msg = parse_client_message(start_agent('{"steps":[' + steps + "]}"))
    assert len(msg["options"]["steps"]) == 2000


def test_the_size_limit_comes_first_for_every_frame():
    frame = "[" * (MAX_MESSAGE_BYTES + 1)
    err = refusal(frame)
    assert err.code == ErrorCode.TOO_LARGE and err.details["limit"] == MAX_MESSAGE_BYTES


def test_too_deep_walks_without_recursion():
    deep: Any = []
    for _ in range(100_000):  # far past Python's recursion limit
        deep = [deep]
    assert too_deep({"x": deep}) == "x"
    assert too_deep({"x": [[{}]]}) is None
    assert too_deep([[[]]], limit=2) == "0"


# -- a gateway with its backends in memory ----------------------------------------------------

class Store:
    """The thread's history (for fills) and its head."""

    def __init__(self) -> None:
        self.payloads: list[tuple[int, bytes]] = []
        self.during_fetch: list[Any] = []  # callables run while a fill reads history

    def add(self, seq: int) -> tuple[int, str, bytes]:
        payload = orjson.dumps({"seq": seq, "type": "agent_thinking", "event_id": f"e{seq}"})
        self.payloads.append((seq, payload))
        return seq, f"e{seq}", payload

    async def head_seq(self, tid: str) -> int:
        return 0

    async def fetch(self, thread_id: str, since: int, head: int):
        while self.during_fetch:
            self.during_fetch.pop(0)()
        return assemble(ReplayPlan(since, head), self.payloads)


class NoHub:
    healthy = True
    local: dict[str, Any] = {}

    async def join(self, thread_id: str, conn: Any) -> None:
        return None

    async def leave(self, thread_id: str, conn: Any) -> None:
        return None


Socket = MemoryWire


def make_gateway(**settings: Any) -> Gateway:
    gateway = Gateway(Settings(jwt_secret=SECRET, redis_url="redis://127.0.0.1:1/0", server_id="unit", **settings))
    gateway.hub = NoHub()  # type: ignore[assignment]
    return gateway


def claims(gateway: Gateway, user: str = "alice"):
    return gateway.verify(issue_token(user, key=SECRET))


async def until(check, what: str, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0)


# -- a cursor's held events are bounded --------------------------------------------------------

def test_a_flood_during_a_fill_is_held_up_to_the_bound_then_read_from_history_in_order():
    async def scenario() -> None:
        gateway = make_gateway(outbound_queue=200)
        store = Store()
        gateway.bus, gateway.history = store, store  # type: ignore[assignment]
        socket = Socket()
        conn = Connection(gateway, socket, claims(gateway), "conn_0123456789abcdef")
        await conn.follow(THREAD, None, None, hold=True)  # busy until released, like start_agent
        cursor = conn.cursors[THREAD]
        for seq in range(1, 3001):
            conn.on_live(THREAD, *store.add(seq))
            assert len(cursor.pending) <= cursor.limit == 50
        assert cursor.behind == 3000
        # More arrive while the fill reads history: held too, within the bound.
        store.during_fetch.append(lambda: [conn.on_live(THREAD, *store.add(s)) for s in range(3001, 3301)])
        conn.release(THREAD)
        await until(lambda: len(socket.sent) >= 3300 and not cursor.busy, "every event")
        seqs = [f["seq"] for f in socket.sent if "seq" in f]
        assert seqs == list(range(1, 3301))
        assert not any(f.get("type") == "replay_complete" for f in socket.sent)  # no gap was reported
        assert socket.closed is None and not cursor.pending and cursor.behind == 0
        await conn.shutdown()

    asyncio.run(scenario())


def test_copies_of_delivered_events_are_not_held():
    from agentevents.gateway.connection import Cursor
    cursor = Cursor(last=10, limit=3)
    assert cursor.hold(10, "e10", b"x") is False
    assert cursor.hold(11, "e11", b"x") and cursor.hold(11, "e11", b"x")
    assert list(cursor.pending) == [11]


# -- a failed handshake leaves nothing behind --------------------------------------------------

class Request:
    def __init__(self, token: str) -> None:
        self.path = "/ws"
        self.headers = Headers([("Authorization", f"Bearer {token}")])


class Headers:
    def __init__(self, items: list[tuple[str, str]]) -> None:
        self.items = items

    def get_all(self, name: str) -> list[str]:
        return [v for k, v in self.items if k.lower() == name.lower()]


class HalfOpen:
    """A connection whose handshake process_request accepts and then never completes."""

    claims = GatewayConnection.claims
    remote_address = ("127.0.0.1", 1)


def test_claims_ride_on_the_connection_and_the_gateway_keeps_none():
    async def scenario() -> None:
        gateway = make_gateway()

        async def not_revoked(_claims) -> bool:
            return False

        gateway._revoked = not_revoked  # type: ignore[method-assign]
        before = {k: len(v) for k, v in vars(gateway).items() if isinstance(v, dict | set | list)}
        refs = []
        for i in range(200):
            connection = HalfOpen()
            assert await gateway.process_request(connection, Request(issue_token(f"u{i}", key=SECRET))) is None
            assert connection.claims.user_id == f"u{i}"
            refs.append(weakref.ref(connection))
            del connection  # the client went away before the upgrade completed
        gc.collect()
        assert all(ref() is None for ref in refs), "the gateway kept a half-open connection"
        after = {k: len(v) for k, v in vars(gateway).items() if isinstance(v, dict | set | list)}
        assert after == before

    asyncio.run(scenario())


class BrokenSocket(Socket):
    """Fails while the connection runs, with an error no handler expects."""

    claims = None
    close_code = None

    def __aiter__(self):
        return self

    async def __anext__(self):
        raise RuntimeError("boom")


def test_a_connection_that_fails_unexpectedly_is_counted_out_again():
    async def scenario() -> None:
        gateway = make_gateway()
        ws = BrokenSocket()
        ws.claims = claims(gateway)
        gauge = REGISTRY.get_sample_value("ae_connections")
        with pytest.raises(RuntimeError):
            await gateway.handler(ws)  # type: ignore[arg-type]
        assert gateway.connections == {}
        assert REGISTRY.get_sample_value("ae_connections") == gauge
        assert (await gateway.health())["connections"] == 0

    asyncio.run(scenario())


# -- the tool rate limiter forgets idle buckets ------------------------------------------------

def test_idle_tool_buckets_are_forgotten_and_limits_still_hold():
    limiter = ToolRateLimiter(rate=5.0, burst=10.0)
    refill = limiter.burst / limiter.rate
    for i in range(10_000):  # many users, each calling once, a little apart
        limiter.check(f"user{i}", "calculator", i * 0.01)
    assert len(limiter.buckets) <= 2 * refill / 0.01 + 1
    now = 10_000 * 0.01 + 2 * refill
    limiter.check("late", "calculator", now)
    assert set(limiter.buckets) == {("late", "calculator")}
    # An active user keeps their bucket, and their limit.
    allowed = [limiter.check("busy", "echo", now) is None for _ in range(15)]
    assert allowed.count(True) == 10
    assert limiter.check("busy", "echo", now + refill / 2) is None  # refilled a little, not reset


# -- revocation of open connections ------------------------------------------------------------

def test_a_revocation_notice_closes_the_connections_of_that_token_or_user_only():
    async def scenario() -> None:
        gateway = make_gateway()
        sockets: dict[str, Socket] = {}
        tokens = {"a1": claims(gateway, "alice"), "a2": claims(gateway, "alice"), "b": claims(gateway, "bob"),
                  "c": claims(gateway, "carol")}
        for name, cl in tokens.items():
            sockets[name] = Socket()
            conn = Connection(gateway, sockets[name], cl, f"conn_{name}")
            gateway.connections[conn.id] = conn
        gateway.on_revocation(notice(jti=tokens["a1"].jti))
        gateway.on_revocation(notice(user_id="carol"))
        gateway.on_revocation(b"not json")
        gateway.on_revocation(b'{"jti": 5}')
        await until(lambda: sockets["a1"].closed and sockets["c"].closed, "the closes")
        assert sockets["a1"].closed == sockets["c"].closed == CloseCode.TOKEN_REVOKED == 3502
        assert sockets["a2"].closed is None and sockets["b"].closed is None

    asyncio.run(scenario())


class Pipeline:
    def __init__(self, keys: set[str]) -> None:
        self.keys, self.calls = keys, []

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc) -> None:
        return None

    def exists(self, *names: str) -> None:
        self.calls.append(sum(n in self.keys for n in names))

    async def execute(self) -> list[int]:
        return self.calls


class Keys:
    """Revocation keys as Redis would hold them, read through pipelined EXISTS."""

    def __init__(self, keys: set[str]) -> None:
        self.keys = keys

    def pipeline(self, transaction: bool = True) -> Pipeline:
        return Pipeline(self.keys)


def test_the_periodic_check_closes_connections_whose_key_was_set_without_a_notice():
    async def scenario() -> None:
        gateway = make_gateway()
        bob = claims(gateway, "bob")
        mine, theirs = Socket(), Socket()
        for conn in (Connection(gateway, mine, bob, "conn_bob"),
                     Connection(gateway, theirs, claims(gateway, "dave"), "conn_dave")):
            gateway.connections[conn.id] = conn
        gateway.redis = Keys({f"ae:revoked:{bob.jti}"})  # type: ignore[assignment]
        assert await gateway.sweep_revocations() == 1
        await until(lambda: mine.closed, "the close")
        assert mine.closed == 3502 and theirs.closed is None
        gateway.redis = Keys({"ae:revoked-user:dave"})  # type: ignore[assignment]
        assert await gateway.sweep_revocations() == 1

    asyncio.run(scenario())


# -- errors echo the request_id, rate_limited included -----------------------------------------

def test_a_rate_limited_message_gets_its_request_id_back():
    async def scenario() -> None:
        gateway = make_gateway()
        socket = Socket()
        conn = Connection(gateway, socket, claims(gateway), "conn_rate")
        conn.inbound = TokenBucket(rate=0.001, burst=1.0)
        assert conn.inbound.allow(time.monotonic())  # the burst is spent, and refills only slowly
        await gateway._receive(conn, '{"type": "ping", "request_id": "r-42"}')
        await gateway._receive(conn, '{"type": "ping"}')
        await until(lambda: len(socket.sent) == 2, "two errors")
        assert [f["code"] for f in socket.sent] == ["rate_limited"] * 2
        assert socket.sent[0]["request_id"] == "r-42" and "request_id" not in socket.sent[1]
        assert socket.sent[0]["details"]["retry_after_ms"] >= 1
        await conn.shutdown()

    asyncio.run(scenario())
