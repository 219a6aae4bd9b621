"""A connection's outbound path (no I/O): frames go out at once while the socket takes them, wait
in their lanes while it does not (answers first, then events, in order, several per write), a
full event lane still closes the connection as slow, and every event written is audited as part
of a range of consecutive seqs per thread."""

from __future__ import annotations

import asyncio

import orjson
from wires import MemoryWire

from agentevents.auth import issue_token
from agentevents.config import Settings
from agentevents.gateway.connection import Connection, Outbound
from agentevents.gateway.server import Gateway

SECRET = "outbound-test-secret-0123456789abcdef"


def setup(wire: MemoryWire, **settings) -> tuple[Gateway, Connection]:
    gateway = Gateway(Settings(jwt_secret=SECRET, redis_url="redis://127.0.0.1:1/0", server_id="gw-out", **settings))
    conn = Connection(gateway, wire, gateway.verify(issue_token("alice", key=SECRET)), "conn_out")
    return gateway, conn


def event(thread_id: str, seq: int) -> Outbound:
    text = orjson.dumps({"seq": seq, "type": "agent_thinking", "event_id": f"{thread_id}-{seq}",
                         "thread_id": thread_id})
    return Outbound(text, thread_id, seq, f"{thread_id}-{seq}")


def ranges(gateway: Gateway) -> list[tuple]:
    return [row[:5] for row in gateway.audit.buffers["delivery_ranges"]]


def test_frames_go_out_at_once_while_the_socket_takes_them():
    async def scenario() -> None:
        wire = MemoryWire()
        _gateway, conn = setup(wire)
        for seq in range(1, 4):
            conn._enqueue(event("t", seq))
        conn.send_frame({"type": "pong"})
        assert [f.get("seq") or f["type"] for f in wire.sent] == [1, 2, 3, "pong"]
        assert wire.writes == 4 and conn._writer is None  # no task was needed
    asyncio.run(scenario())


def test_while_the_socket_is_paused_frames_wait_and_then_go_answers_first_in_one_write():
    async def scenario() -> None:
        wire = MemoryWire(ready=False)
        _gateway, conn = setup(wire)
        for seq in range(1, 6):
            conn._enqueue(event("t", seq))
        conn.send_frame({"type": "pong", "request_id": "p"})
        await asyncio.sleep(0)
        assert wire.sent == []
        wire.resume()
        while len(wire.sent) < 6:
            await asyncio.sleep(0)
        assert [f.get("seq") or f["type"] for f in wire.sent] == ["pong", 1, 2, 3, 4, 5]
        assert wire.writes == 1
        conn._enqueue(event("t", 6))  # nothing waits any more: straight out again
        assert wire.sent[-1]["seq"] == 6
        await conn.shutdown()
    asyncio.run(scenario())


def test_a_full_event_lane_still_closes_the_connection_as_slow():
    async def scenario() -> None:
        wire = MemoryWire(ready=False)
        _gateway, conn = setup(wire, outbound_queue=10)
        for seq in range(1, 12):
            conn._enqueue(event("t", seq))
        await asyncio.sleep(0)
        assert conn.closing and len(conn.events) == 10
        for _ in range(10):
            await asyncio.sleep(0)
        assert wire.closed == 3001
        await conn.shutdown()
    asyncio.run(scenario())


def test_every_event_written_is_audited_in_ranges_of_consecutive_seqs_per_thread():
    async def scenario() -> None:
        wire = MemoryWire()
        gateway, conn = setup(wire)
        for seq in (1, 2, 3):
            conn._enqueue(event("a", seq))
        conn._enqueue(event("b", 1))
        conn.send_frame({"type": "pong"})  # not an event: not audited
        for seq in (4, 5):
            conn._enqueue(event("a", seq))
        conn._enqueue(event("a", 9))  # after a replay that could not be complete: a new range
        assert conn in gateway.audit_dirty
        assert ranges(gateway) == [("a", 1, 5, "alice", "conn_out")]
        gateway.audit_dirty.clear()
        conn.flush_ranges()  # what the gateway does every AUDIT_FLUSH_S
        assert sorted(ranges(gateway)) == [("a", 1, 5, "alice", "conn_out"), ("a", 9, 9, "alice", "conn_out"),
                                           ("b", 1, 1, "alice", "conn_out")]
        conn._enqueue(event("a", 10))  # the next range starts after the flush
        await conn.shutdown()
        assert ranges(gateway)[-1] == ("a", 10, 10, "alice", "conn_out")
        first_at, last_at = gateway.audit.buffers["delivery_ranges"][0][6:8]
        assert first_at <= last_at and first_at.tzinfo is not None
        delivered = [(f["thread_id"], f["seq"]) for f in wire.sent if "seq" in f]
        audited = [(r[0], s) for r in ranges(gateway) for s in range(r[1], r[2] + 1)]
        assert sorted(delivered) == sorted(audited)  # every delivery, once
    asyncio.run(scenario())


def test_ranges_of_many_connections_are_handed_over_in_slices_with_deliveries_between():
    async def scenario() -> None:
        wire = MemoryWire()
        gateway, first = setup(wire)
        conns = [first] + [Connection(gateway, wire, first.claims, f"conn_{i}") for i in range(1, 250)]
        for conn in conns:
            conn._enqueue(event(f"t{conn.id}", 1))
        assert len(gateway.audit_dirty) == 250
        between: list[int] = []

        async def deliver_meanwhile() -> None:  # live delivery that must get its turn mid hand-over
            for seq in (2, 3):
                await asyncio.sleep(0)
                between.append(len(ranges(gateway)))
                conns[-1]._enqueue(event(f"t{conns[-1].id}", seq))

        other = asyncio.create_task(deliver_meanwhile())
        assert await gateway.hand_over_ranges() == 250
        await other
        assert any(0 < n < 250 for n in between), between  # it ran while the hand-over was under way
        await gateway.hand_over_ranges()  # whatever started after its connection was handed over
        assert not gateway.audit_dirty
        audited = sorted((r[0], s) for r in ranges(gateway) for s in range(r[1], r[2] + 1))
        delivered = sorted((f["thread_id"], f["seq"]) for f in wire.sent if "seq" in f)
        assert len(delivered) == 252 and audited == delivered  # every delivery, once
        for conn in conns:
            await conn.shutdown()
    asyncio.run(scenario())
