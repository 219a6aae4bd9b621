"""The in-order ping (docs/protocol.md §5.8): a plain pong overtakes the events queued for a
connection; a pong asked for with ``in_order: true`` comes after every one of them."""

from __future__ import annotations

import asyncio

from wires import MemoryWire

from agentevents.auth import issue_token
from agentevents.config import Settings
from agentevents.gateway.connection import Connection
from agentevents.gateway.server import Gateway
from agentevents.protocol.schemas import validate_client_message, validate_server_frame

SECRET = "barrier-test-secret-0123456789abcdef"


def frames_in_sending_order() -> list[dict]:
    async def scenario() -> list[dict]:
        gateway = Gateway(Settings(jwt_secret=SECRET, redis_url="redis://127.0.0.1:1/0", server_id="gw-test"))
        socket = MemoryWire(ready=False)  # the socket takes nothing yet: frames wait in their lanes
        conn = Connection(gateway, socket, gateway.verify(issue_token("alice", key=SECRET)), "conn_barrier")
        for n in range(1, 6):  # five events already queued, the writer not yet draining
            conn.send_frame({"type": "agent_thinking", "seq": n}, in_order=True)
        await gateway.on_ping(conn, {"type": "ping", "request_id": "plain"})
        await gateway.on_ping(conn, {"type": "ping", "request_id": "barrier", "in_order": True})
        conn.send_frame({"type": "agent_thinking", "seq": 6}, in_order=True)  # queued after the barrier
        socket.resume()
        while len(socket.sent) < 8:
            await asyncio.sleep(0)  # let the writer run; it has exactly 8 frames to send
        assert socket.writes == 1, "the waiting frames went out in one write"
        await conn.shutdown()
        return socket.sent

    return asyncio.run(asyncio.wait_for(scenario(), 10))


def test_a_plain_pong_overtakes_queued_events_and_a_barrier_pong_does_not():
    sent = frames_in_sending_order()
    order = [f.get("request_id") or f.get("seq") for f in sent]
    assert order == ["plain", 1, 2, 3, 4, 5, "barrier", 6]
    barrier = sent[6]
    assert barrier["in_order"] is True
    assert "in_order" not in sent[0]


def test_the_barrier_ping_and_its_pong_match_the_published_schemas():
    validate_client_message({"type": "ping", "request_id": "b1", "in_order": True})
    validate_server_frame({"type": "pong", "request_id": "b1", "server_time": "2026-11-25T15:11:00.140Z",
                           "in_order": True})
