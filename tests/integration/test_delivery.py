"""Delivery against the real stack: isolation, resume after a disconnect, refused handshakes."""

from __future__ import annotations

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
