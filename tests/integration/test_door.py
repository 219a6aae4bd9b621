"""The gateway's door against the real stack: what a client sends that no check foresaw gets a
documented answer, writes nothing, and disturbs nobody; revoked tokens lose their connections; a
run request resent after a lost reply is queued once."""

from __future__ import annotations

import asyncio
import time
import urllib.request

import jwt
import orjson
import redis.asyncio as aioredis
from hamcrest import assert_that, equal_to

from agentevents.bus import RUNS_STREAM, SUBMIT_LUA, Bus, connect
from agentevents.protocol.codes import CloseCode
from agentevents.protocol.envelope import new_id, utc_timestamp
from agentevents.protocol.messages import MAX_DEPTH
from agentevents.stack import native
from agentevents.testing.client import HandshakeRefused, RecordingClient

ENV = native.stack_env()  # these tests of our own stack read its Redis and its gateways' /health


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


async def meta_keys(redis: aioredis.Redis) -> int:
    return len([key async for key in redis.scan_iter(match="ae:*:meta", count=1000)])


def gateway_connections(name: str = "gateway1") -> int:
    with urllib.request.urlopen(f"http://{native.HOST}:{native.GATEWAYS[name]}/health", timeout=2) as resp:
        return int(orjson.loads(resp.read())["connections"])


async def until(check, what: str, timeout_s: float = 10.0):
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check() if asyncio.iscoroutinefunction(check) else check()
        if value:
            return value
        assert time.monotonic() < deadline, f"no {what} within {timeout_s:g}s"
        await asyncio.sleep(0.05)


def test_deep_nesting_is_malformed_writes_nothing_and_disturbs_nobody(run):
    async def body(world):
        redis = aioredis.from_url(ENV["AE_REDIS_URL"])
        try:
            bob = await world.connect("Bob")
            bobs = await bob.start_agent("math", "What is 6*7?")
            alice = await world.connect("Alice")
            before = await meta_keys(redis)
            frames = [
                ("options 254 deep", "deep-1", '{"type":"start_agent","request_id":"deep-1","agent_type":"math",'
                 '"message":"1","options":' + nested(254) + "}"),
                ("options just past the limit", "deep-2", '{"type":"start_agent","request_id":"deep-2",'
                 '"agent_type":"math","message":"1","options":' + nested(MAX_DEPTH) + "}"),
                ("a list 1000 deep", "deep-3", '{"type":"subscribe","request_id":"deep-3","thread_id":'
                 + "[" * 1000 + "]" * 1000 + "}"),
            ]
            for what, rid, frame in frames:
                since = len(alice.frames)
                await alice.send_raw(frame)
                answer = await alice.wait_for(lambda f, rid=rid: f.data.get("request_id") == rid, 5, what,
                                              since=since)
                assert_that(answer.data["code"], equal_to("malformed_message"))
                assert str(MAX_DEPTH) in answer.data["message"], answer.raw
                assert ("thread_id" if "list" in what else "options") in answer.data["message"], answer.raw
                assert answer.data["details"] == {"limit": MAX_DEPTH}
            await alice.barrier()  # nothing else came of them: no run_accepted, no event
            assert [f.type for f in alice.frames] == ["connection_established", "error", "error", "error", "pong"]
            assert_that(await meta_keys(redis), equal_to(before))
            # The connection is up and works; Bob's run went on.
            ok = await alice.start_agent("math", "What is 2*21?", options={"preferences": nested_dict(MAX_DEPTH - 3)})
            assert ok.type == "run_accepted", ok.raw
            assert (await alice.wait_run_end(ok.data["run_id"])).data["data"]["status"] == "completed"
            assert (await bob.wait_run_end(bobs.data["run_id"])).data["data"]["result"] == 42
            assert bob.close_code is None and alice.close_code is None
        finally:
            await redis.aclose()
    run(body)


def nested_dict(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def absurd_tokens(world, user_id: str) -> dict[str, str]:
    now = int(time.time())
    base = {"sub": user_id, "iat": now, "exp": now + 600, "jti": new_id(), "iss": "agentevents",
            "aud": "agentevents-ws"}
    variants = {"exp 2^64": {"exp": 2**64}, "exp a numeric string": {"exp": str(now + 600)},
                "nbf 2^64": {"nbf": 2**64}, "nbf a numeric string": {"nbf": str(now)},
                "nbf far in the past": {"nbf": -(2**70)}, "iat 2^64": {"iat": 2**64}, "iat -1": {"iat": -1},
                "iat a numeric string": {"iat": str(now)}}
    return {what: jwt.encode({**base, **claims}, world.target.jwt_secret, algorithm="HS256")
            for what, claims in variants.items()}


def test_absurd_token_times_get_401_or_invalid_token_and_nothing_stays_counted(run):
    async def body(world):
        direct = f"ws://{native.HOST}:{native.GATEWAYS['gateway1']}/ws"
        await until(lambda: gateway_connections() == 0, "idle gateway1")
        alice = await world.connect("Alice", url=direct)
        await until(lambda: gateway_connections() == 1, "Alice counted on gateway1")
        person = world.person("Mallory")
        tokens = absurd_tokens(world, person.user_id)
        for _ in range(10 // len(tokens) + 1):
            for what, token in tokens.items():
                try:
                    await RecordingClient(direct, token, name="mallory").connect()
                except HandshakeRefused as refused:
                    assert refused.status == 401, (what, refused.status, refused.body)
                else:
                    raise AssertionError(f"a token with {what} was accepted")
        assert_that(gateway_connections(), equal_to(1))
        # The same tokens on auth_refresh: refused as invalid_token, and the connection stays.
        for what, token in absurd_tokens(world, world.person("Alice").user_id).items():
            answer = await alice.request({"type": "auth_refresh", "token": token})
            assert answer.type == "error" and answer.data["code"] == "invalid_token", (what, answer.raw)
        assert (await alice.request({"type": "ping"})).type == "pong"
        assert_that(gateway_connections(), equal_to(1))
        await alice.close()
        await until(lambda: gateway_connections() == 0, "gateway1 back to no connection")
    run(body)


def test_revoking_a_token_closes_its_open_connections_and_no_other(run):
    async def body(world):
        person = world.person("Alice")
        doomed, kept, quiet = world.token_for(person), world.token_for(person), world.token_for(person)
        # Two connections on the token to revoke, one straight to each gateway: both are closed.
        on_each = [await world.connect("Alice", token=doomed, url=f"ws://{native.HOST}:{port}/ws")
                   for port in native.GATEWAYS.values()]
        other_token = await world.connect("Alice", token=kept)
        bob = await world.connect("Bob")
        running = await other_token.start_agent("math", "What is 3*4?")
        started = time.monotonic()
        await world.target.control.revoke_token(doomed)
        for client in on_each:
            assert_that(await client.wait_closed(3), equal_to(CloseCode.TOKEN_REVOKED))
            assert client.close_reason == "token revoked"
        assert time.monotonic() - started < 3
        try:
            await RecordingClient(world.target.ws_url, doomed, name="again").connect()
            raise AssertionError("the revoked token opened a connection")
        except HandshakeRefused as refused:
            assert refused.status == 401 and "token revoked" in refused.body
        # Refreshing onto a revoked token is refused too.
        answer = await other_token.request({"type": "auth_refresh", "token": doomed})
        assert answer.data.get("code") == "invalid_token" and answer.data["message"] == "token revoked", answer.raw
        # A revocation key set by hand, with no notice, is found by the gateways' periodic check.
        silent = await world.connect("Alice", token=quiet)
        redis = aioredis.from_url(ENV["AE_REDIS_URL"])
        try:
            await redis.set(f"ae:revoked:{jwt.decode(quiet, options={'verify_signature': False})['jti']}", b"1",
                            ex=600)
        finally:
            await redis.aclose()
        assert_that(await silent.wait_closed(15), equal_to(CloseCode.TOKEN_REVOKED))
        # Everyone else is still connected and served.
        assert (await other_token.wait_run_end(running.data["run_id"])).data["data"]["result"] == 12
        for client in (other_token, bob):
            await client.barrier()
            assert client.close_code is None
    run(body)


class ReplyLosingProxy:
    """A TCP link to Redis that, once, delivers a request holding ``marker`` and then cuts the
    connection instead of returning Redis's reply: the lost reply that makes redis-py resend."""

    def __init__(self, marker: bytes) -> None:
        self.marker = marker
        self.armed = True
        self.lost_replies = 0
        self.links = 0
        self.server: asyncio.Server | None = None
        self.cuts: list[asyncio.Event] = []
        self.handlers: set[asyncio.Task] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for cut in self.cuts:
            cut.set()
        await asyncio.gather(*self.handlers, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.links += 1
        self.handlers.add(asyncio.current_task())
        up_reader, up_writer = await asyncio.open_connection(native.HOST, native.REDIS_PORT)
        cut = asyncio.Event()
        self.cuts.append(cut)
        delivered = asyncio.Event()  # the marked request went up; its reply must not come back

        async def upstream() -> None:
            while chunk := await reader.read(65536):
                up_writer.write(chunk)
                await up_writer.drain()
                if self.armed and self.marker in chunk:
                    self.armed = False
                    delivered.set()
            cut.set()

        async def downstream() -> None:
            while chunk := await up_reader.read(65536):
                if delivered.is_set():
                    self.lost_replies += 1
                    break
                writer.write(chunk)
                await writer.drain()
            cut.set()

        pumps = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
        await cut.wait()
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        writer.close()
        up_writer.close()


def test_a_run_request_resent_after_a_lost_reply_is_queued_once(run):
    async def body(world):
        person = world.person("Alice")
        direct = aioredis.from_url(ENV["AE_REDIS_URL"])
        run_id, thread_id = new_id(), new_id()
        proxy = ReplyLosingProxy(run_id.encode())
        port = await proxy.start()
        redis = connect(f"redis://127.0.0.1:{port}/0")  # the gateways' client, with their retry policy
        try:
            await direct.script_load(SUBMIT_LUA)  # so the first attempt runs the script, not a NOSCRIPT
            request = {"run_id": run_id, "thread_id": thread_id, "user_id": person.user_id, "agent_type": "math",
                       "message": "What is 5*5?", "options": {}, "permissions": [], "tier": "free",
                       "requested_at": time.time(), "connection_id": "conn_0000000000000000"}
            assert await Bus(redis).submit_run(request, new_thread_at=utc_timestamp()) is True
            assert proxy.lost_replies == 1 and proxy.links >= 2, "the reply was not lost and resent"
            latest = await direct.xrevrange(RUNS_STREAM, count=200)
            queued = [e for e in latest if orjson.loads(e[1][b"r"])["run_id"] == run_id]
            assert_that(len(queued), equal_to(1))
            assert (await direct.hget(f"ae:{{{thread_id}}}:meta", "user_id")).decode() == person.user_id
            assert 0 < await direct.ttl(f"ae:{{{thread_id}}}:meta") <= 86400
            # The run runs once: its thread holds one agent_started and one agent_completed.
            alice = await world.connect("Alice")
            answer = await alice.request({"type": "subscribe", "thread_id": thread_id, "since_seq": 0})
            assert answer.type == "subscribed", answer.raw
            await alice.wait_for(lambda f: f.type == "agent_completed", 15, "the run's completion")
            await world.quiet([alice])
            events = alice.events(thread_id=thread_id)
            assert_that([f.type for f in events].count("agent_started"), equal_to(1))
            assert_that([f.type for f in events].count("agent_completed"), equal_to(1))
            assert {f.data["run_id"] for f in events} == {run_id}
        finally:
            await redis.aclose()
            await direct.aclose()
            await proxy.close()
    run(body)
