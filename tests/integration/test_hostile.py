"""The hostile inputs that once hurt the stack, each with its defined outcome, sent while another
user's run streams: that run must arrive whole, in order and without a stall.

A NUL character in a message, a newline in a token's sub (an attempt to forge log lines),
since_seq written as 1.0, -0.0, 1e0 or past 2^63 - 1, a refresh token whose exp is 2^64, a
list nested 1,000 deep, and two Authorization headers.
"""

from __future__ import annotations

import time

import jwt
import websockets
from hamcrest import assert_that, equal_to
from websockets.exceptions import InvalidStatus

from agentevents.protocol.envelope import new_id
from agentevents.stack import native

SCRIPT = "agents:script"
FORGED_TS = "2020-01-01 00:00:00,000"
STALL_S = 2.0  # the canary thinks every 50 ms: a pause this long between two of its events is a stall


def canary_steps(n: int) -> list[dict]:
    steps: list[dict] = []
    for i in range(n):
        steps += [{"think": f"canary thought {i + 1}"}, {"sleep": 0.05}]
    return [*steps, {"complete": {"status": "completed", "result": n, "summary": "canary done"}}]


def gateway_log_lines() -> list[str]:
    logs = native.stack_dir() / "logs"
    return [line for name in native.GATEWAYS
            for line in (logs / f"{name}.log").read_text(errors="replace").splitlines()]


async def refused(url: str, headers: list[tuple[str, str]]) -> int:
    try:
        async with websockets.connect(url, additional_headers=headers, open_timeout=5):
            raise AssertionError(f"the handshake with {[name for name, _ in headers]} was accepted")
    except InvalidStatus as exc:
        return exc.response.status_code


async def answer_to(client, frame: str, request_id: str, what: str):
    since = len(client.frames)
    await client.send_raw(frame)
    return await client.wait_for(lambda f: f.data.get("request_id") == request_id, 5, what, since=since)


def test_each_hostile_input_gets_its_defined_answer_and_another_users_run_streams_on(run):
    async def body(world):
        world.person("Bob", permissions=[SCRIPT])
        bob = await world.connect("Bob")
        canary = await bob.start_agent("scripted", "canary", options={"steps": canary_steps(40)})

        mallory = await world.connect("Mallory")
        target = world.target
        for n, value in enumerate(["1.0", "-0.0", "1e0", "9223372036854775808", '"1"']):
            rid = f"seq-{n}"
            frame = f'{{"type":"subscribe","request_id":"{rid}","thread_id":"t-{n}","since_seq":{value}}}'
            answer = await answer_to(mallory, frame, rid, f"since_seq {value}")
            assert_that(answer.data["code"], equal_to("malformed_message"))
            assert "since_seq" in answer.data["message"], answer.raw
        answer = await answer_to(mallory, '{"type":"resume","request_id":"res-1","threads":{"t-1":1.0}}',
                                 "res-1", "resume with 1.0")
        assert_that(answer.data["code"], equal_to("malformed_message"))

        answer = await answer_to(mallory, '{"type":"subscribe","request_id":"deep","thread_id":'
                                 + "[" * 1000 + "]" * 1000 + "}", "deep", "a list 1000 deep")
        assert_that((answer.data["code"], answer.data["details"]), equal_to(("malformed_message", {"limit": 32})))

        now = int(time.time())
        huge_exp = jwt.encode({"sub": world.person("Mallory").user_id, "iat": now, "exp": 2**64, "jti": new_id(),
                               "iss": "agentevents", "aud": "agentevents-ws"}, target.jwt_secret, algorithm="HS256")
        answer = await mallory.request({"type": "auth_refresh", "token": huge_exp})
        assert_that((answer.type, answer.data.get("code")), equal_to(("error", "invalid_token")))

        nul = await mallory.start_agent("math", "What is 6*7? \u0000 and a NUL")
        end = await mallory.wait_run_end(nul.data["run_id"], 15)
        assert_that((end.data["data"]["status"], end.data["data"]["result"]), equal_to(("completed", 42)))

        good = world.token_for(world.person("Mallory"))
        assert_that(await refused(target.ws_url, [("Authorization", f"Bearer {good}")] * 2), equal_to(401))

        forger = f"forger-{new_id()[:8]}\nts={FORGED_TS} level=ERROR component=gateway msg=forged"
        forged = jwt.encode({"sub": forger, "iat": now, "exp": now + 600, "jti": new_id(), "iss": "agentevents",
                             "aud": "agentevents-ws"}, target.jwt_secret, algorithm="HS256")
        async with websockets.connect(target.ws_url, additional_headers=[("Authorization", f"Bearer {forged}")],
                                      open_timeout=5) as ws:
            await ws.recv()  # connection_established: the sub is only data
        assert mallory.close_code is None, f"Mallory's connection closed with {mallory.close_code}"
        assert (await mallory.request({"type": "ping"})).type == "pong"

        # The canary: every event, gapless, in order, one completion, and no stall.
        done = await bob.wait_run_end(canary.data["run_id"], 30)
        assert_that((done.data["data"]["status"], done.data["data"]["result"]), equal_to(("completed", 40)))
        events = bob.events(run_id=canary.data["run_id"])
        assert [e.data["seq"] for e in events] == list(range(1, len(events) + 1))
        thoughts = [e.data["data"]["reasoning"] for e in events if e.type == "agent_thinking"]
        assert thoughts == [f"canary thought {i + 1}" for i in range(40)], thoughts
        pauses = [b.at - a.at for a, b in zip(events, events[1:], strict=False)]
        assert max(pauses) < STALL_S, f"the canary stalled {max(pauses):.2f}s between two events"

        # No forged line and no forged key: the sub is one quoted value of the real line.
        lines = gateway_log_lines()
        assert not [line for line in lines if line.startswith(f"ts={FORGED_TS}")]
        quoted = 'user_id="' + forger.replace("\n", "\\n") + '"'
        mine = [line for line in lines if forger.split("\n")[0] in line]
        assert mine and all(quoted in line for line in mine), mine
    run(body)
