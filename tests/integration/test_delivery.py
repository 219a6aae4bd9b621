"""Delivery against the real stack: isolation, resume after a disconnect, refused handshakes."""

from __future__ import annotations

import time

import orjson
from hamcrest import assert_that, empty, equal_to, has_length

from agentevents.testing.client import HandshakeRefused, RecordingClient
from agentevents.testing.matchers import follows_lifecycle, gapless_seqs, has_envelope, only_events_of

SCRIPT = ["agents:script"]


def slow_steps(thinks: int, pause: float) -> dict:
    steps = [{"think": f"step {i}"} for i in range(thinks)]
    steps.insert(thinks // 2, {"sleep": pause})
    return {"steps": steps + [{"complete": {"status": "completed", "result": thinks, "summary": "done"}}]}


def test_two_users_never_see_each_others_events(run):
    async def body(world):
        alice = await world.connect("Alice")
        bob = await world.connect("Bob")
        a = await alice.start_agent("math", "What is 2*21?")
        b = await bob.start_agent("math", "What is 6*7?")
        await alice.wait_run_end(a.data["run_id"])
        await bob.wait_run_end(b.data["run_id"])
        assert_that(alice.events(), only_events_of(world.person("Alice").user_id, {a.data["thread_id"]}))
        assert_that(bob.events(), only_events_of(world.person("Bob").user_id, {b.data["thread_id"]}))
        assert_that(alice.events(), follows_lifecycle(require_tools=True))
        assert_that(alice.events(), gapless_seqs(start=1))
        assert_that(alice.events(), has_envelope(world.person("Alice").user_id, a.data["thread_id"]))

        # Bob asks for Alice's thread: refused, and nothing of Alice's reaches him.
        answer = await bob.request({"type": "subscribe", "thread_id": a.data["thread_id"], "since_seq": 0})
        assert_that(answer.data["code"], equal_to("forbidden"))
        assert_that(bob.events(thread_id=a.data["thread_id"]), empty())
    run(body)


def test_resume_after_a_disconnect_mid_run_returns_exactly_the_missed_events(run):
    async def body(world):
        world.person("Alice", permissions=SCRIPT)
        alice = await world.connect("Alice")
        accepted = await alice.start_agent("scripted", "go", options=slow_steps(thinks=12, pause=1.0))
        run_id, thread_id = accepted.data["run_id"], accepted.data["thread_id"]
        await alice.wait_for(lambda f: f.type == "agent_thinking", 5, "first thinking")
        await alice.drop()
        seen = alice.last_seq(thread_id)
        assert seen >= 2

        again = await world.connect("Alice")
        answer = await again.request({"type": "resume", "threads": {thread_id: seen}})
        assert_that(answer.type, equal_to("resumed"))
        await again.wait_run_end(run_id)
        report = next(f for f in again.frames if f.type == "replay_complete")
        assert report.data["complete"] is True
        combined = alice.events(run_id=run_id) + again.events(run_id=run_id)
        assert_that(combined, gapless_seqs(start=1))
        assert_that(combined, follows_lifecycle())
        assert_that(combined, has_length(1 + 12 + 1))
    run(body)


def test_subscribe_since_zero_replays_a_finished_thread_from_the_archive_or_stream(run):
    async def body(world):
        alice = await world.connect("Alice")
        accepted = await alice.start_agent("research", "Tell me about Mars")
        await alice.wait_run_end(accepted.data["run_id"])
        live = [f.raw for f in alice.events()]

        other = await world.connect("Alice")
        await other.request({"type": "subscribe", "thread_id": accepted.data["thread_id"], "since_seq": 0})
        report = await other.wait_for(lambda f: f.type == "replay_complete", 5, "replay_complete")
        assert report.data["complete"] is True and report.data["count"] == len(live)
        assert_that([f.raw for f in other.events()], equal_to(live))
    run(body)


def test_bad_tokens_are_refused_at_the_handshake_with_401(run):
    async def body(world):
        person = world.person("Mallory")
        forged = world.tokens.token(person.user_id).rsplit(".", 1)[0] + ".forged-signature"
        expired = world.token_for(person, ttl_s=-30)
        for token in (None, forged, expired, "garbage"):
            client = RecordingClient(world.target.ws_url, token, name="mallory")
            try:
                await client.connect()
            except HandshakeRefused as refused:
                assert refused.status == 401, refused
            else:
                raise AssertionError(f"token {str(token)[:20]!r} was accepted")
    run(body)


def test_bad_input_gets_an_error_frame_and_the_connection_stays_up(run):
    async def body(world):
        alice = await world.connect("Alice")
        await alice.send_raw("{nope")
        await alice.send_raw(orjson.dumps({"type": "fly", "request_id": "x1"}).decode())
        await alice.send_raw("x" * (70 * 1024))
        codes = []
        for _ in range(3):
            frame = await alice.wait_for(lambda f: f.type == "error" and f.index not in codes, 5, "error frame")
            codes.append(frame.index)
        errors = [f.data["code"] for f in alice.frames if f.type == "error"]
        assert_that(errors, equal_to(["malformed_message", "unknown_type", "message_too_large"]))
        pong = await alice.request({"type": "ping"})
        assert_that(pong.type, equal_to("pong"))
    run(body)


def test_browsers_authenticate_with_the_subprotocol_and_every_frame_matches_the_schema(run):
    from agentevents.protocol.schemas import validate_server_frame

    async def body(world):
        person = world.person("Alice")
        alice = await world.connect("Alice", token=world.token_for(person), via_subprotocol=True)
        assert_that(alice.subprotocol, equal_to("jwt-auth"))
        accepted = await alice.start_agent("math", "What is 12*(3+4)?")
        end = await alice.wait_run_end(accepted.data["run_id"])
        assert_that(end.data["data"]["result"], equal_to(84))
        for frame in alice.frames:
            validate_server_frame(frame.data)
    run(body)


def test_replay_falls_back_to_the_archive_when_redis_no_longer_has_the_range(run):
    import asyncio

    import asyncpg
    import redis.asyncio as aioredis

    from agentevents.bus import stream_key
    from agentevents.stack import native

    env = native.stack_env()  # this test of our own stack reads its stores directly

    async def body(world):
        alice = await world.connect("Alice")
        accepted = await alice.start_agent("research", "Tell me about Mars")
        await alice.wait_run_end(accepted.data["run_id"])
        thread_id = accepted.data["thread_id"]
        live = [f.raw for f in alice.events()]
        # Wait (with a deadline) until the archive holds the whole thread, then drop the stream.
        db = await asyncpg.connect(env["AE_DATABASE_URL"])
        try:
            for _ in range(100):
                if await db.fetchval("SELECT count(*) FROM events WHERE thread_id = $1", thread_id) == len(live):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the archive never held the whole thread")
        finally:
            await db.close()
        redis = aioredis.from_url(env["AE_REDIS_URL"])
        try:
            assert await redis.delete(stream_key(thread_id)) == 1
        finally:
            await redis.aclose()

        other = await world.connect("Alice")
        await other.request({"type": "subscribe", "thread_id": thread_id, "since_seq": 0})
        report = await other.wait_for(lambda f: f.type == "replay_complete", 5, "replay_complete")
        assert report.data["complete"] is True
        assert_that([f.raw for f in other.events()], equal_to(live))
    run(body)


def slow_consumers_closed() -> float:
    """The gateways' own count of connections closed for not reading (their /metrics)."""
    import urllib.request

    from agentevents.stack import native

    total = 0.0
    for port in native.GATEWAYS.values():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            for line in resp.read().decode().splitlines():
                if line.startswith("ae_slow_consumers_total "):
                    total += float(line.split()[1])
    return total


def test_a_client_that_stops_reading_is_closed_as_slow_and_nobody_else_waits(run):
    import asyncio

    from websockets.asyncio.client import connect

    async def body(world):
        before = slow_consumers_closed()
        person = world.person("Sloth", permissions=SCRIPT, tier="enterprise")
        # A raw socket that reads nothing: its small receive queue fills, then TCP, then the server's queue.
        auth = {"Authorization": f"Bearer {world.token_for(person)}"}
        sloth = await connect(world.target.ws_url, additional_headers=auth, max_queue=1, compression=None)
        # Five runs flood one thread at once (a single run is paced by Redis's fsync per event).
        flood = {"steps": [{"repeat": 3000, "step": {"tool": "echo", "params": {"value": "x" * 2000}}}]}
        reader = await world.connect("Sloth")
        first = await reader.start_agent("scripted", "flood", options=flood)
        thread_id = first.data["thread_id"]
        await sloth.send(orjson.dumps({"type": "subscribe", "thread_id": thread_id}).decode())
        runs = [first.data["run_id"]]
        for _ in range(4):
            again = await reader.start_agent("scripted", "flood", thread_id=thread_id, options=flood)
            runs.append(again.data["run_id"])
        try:
            bob = await world.connect("Bob")
            started = await bob.start_agent("math", "What is 6*7?")
            end = await bob.wait_run_end(started.data["run_id"], 10)
            assert_that(end.data["data"]["result"], equal_to(42))
            # Closed once its queue overflows. It reads nothing, so neither the close frame (3001)
            # nor the end of the connection can reach it: the gateway's own count says it was closed.
            deadline = asyncio.get_running_loop().time() + 30
            while slow_consumers_closed() == before and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.2)
            assert_that(slow_consumers_closed(), equal_to(before + 1))
        finally:
            sloth.transport.abort()
            for run_id in runs:  # the floods stop here, not minutes later on a shared stack
                await reader.request({"type": "cancel_agent", "run_id": run_id})
            for run_id in runs:
                await reader.wait_run_end(run_id, 20)
    run(body)


def test_cancel_agent_stops_a_running_agent_promptly(run):
    import time

    async def body(world):
        world.person("Alice", permissions=SCRIPT)
        alice = await world.connect("Alice")
        # 25 thoughts, then a long loop of short waits (as an agent awaiting a model would).
        busy = {"steps": [{"think": f"t{i}"} for i in range(25)] + [{"repeat": 5000, "step": {"sleep": 0.005}}]}
        accepted = await alice.start_agent("scripted", "busy", options=busy)
        run_id = accepted.data["run_id"]
        await alice.wait_for(lambda f: f.data.get("seq", 0) >= 20, 5, "20 events")
        sent = time.monotonic()
        answer = await alice.request({"type": "cancel_agent", "run_id": run_id})
        assert_that(answer.type, equal_to("cancel_accepted"))
        end = await alice.wait_run_end(run_id, 5)
        assert_that(end.data["data"]["status"], equal_to("cancelled"))
        assert end.at - sent < 1.0, f"the run took {end.at - sent:.2f}s to stop after the cancel"
        await alice.barrier()
        assert_that(len(alice.events(run_id=run_id)), equal_to(1 + 25 + 1))  # nothing after the end
    run(body)


def test_two_authorization_headers_or_an_absurd_expiry_get_401_not_a_server_error(run):
    async def body(world):
        import jwt
        import websockets
        from websockets.exceptions import InvalidStatus
        person = world.person("Mallory")
        good = world.token_for(person)
        now = int(time.time())
        absurd = jwt.encode({"sub": person.user_id, "iat": now, "exp": 2**64, "jti": "j", "iss": "agentevents",
                             "aud": "agentevents-ws"}, world.target.jwt_secret, algorithm="HS256")
        for headers in ([("Authorization", f"Bearer {good}"), ("Authorization", f"Bearer {good}")],
                        [("Authorization", f"Bearer {absurd}")]):
            try:
                async with websockets.connect(world.target.ws_url, additional_headers=headers, open_timeout=5):
                    raise AssertionError(f"accepted with {[h[0] for h in headers]}")
            except InvalidStatus as refused:
                assert refused.response.status_code == 401, refused.response.status_code
        alice = await world.connect("Alice")  # and nobody else is disturbed
        assert (await alice.request({"type": "ping"})).type == "pong"
    run(body)


def test_an_in_order_ping_is_answered_behind_the_events_already_queued(run):
    async def body(world):
        alice = await world.connect("Alice")
        from agentevents.protocol.schemas import validate_server_frame
        pong = await alice.barrier()
        validate_server_frame(pong.data)
        assert pong.data["in_order"] is True
    run(body)
