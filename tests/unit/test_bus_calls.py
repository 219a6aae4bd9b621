"""How the bus groups publishes into script calls (``Bus.publish_events``): pure logic, with a
script stand-in that holds each call until the test lets it answer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agentevents import bus as busmod


class HeldScript:
    """Records each call's keys and args; a call answers when the test releases it."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], list[Any]]] = []
        self.gates: list[asyncio.Future[Any]] = []
        self.next_seq: dict[str, int] = {}

    async def __call__(self, keys: list[str], args: list[Any]) -> list[int]:
        self.calls.append((keys, args))
        gate = asyncio.get_running_loop().create_future()
        self.gates.append(gate)
        outcome = await gate
        if isinstance(outcome, Exception):
            raise outcome
        reply = []
        for seq_key, n in layout(keys, args):
            first = self.next_seq.get(seq_key, 1)
            self.next_seq[seq_key] = first + n
            reply += [first, 1]
        return reply

    def release(self, index: int, outcome: Any = None) -> None:
        self.gates[index].set_result(outcome)

    def release_from(self, index: int) -> None:
        """Let every call from ``index`` on answer."""
        for i in range(index, len(self.gates)):
            self.release(i)

    def batches(self, index: int) -> list[tuple[str, int]]:
        """(thread, number of events) of each batch in call ``index``, in order."""
        return [(seq_key.split("{")[1].split("}")[0], n) for seq_key, n in layout(*self.calls[index])]


def layout(keys: list[str], args: list[Any]) -> list[tuple[str, int]]:
    """(seq key, number of events) of each batch of one call, as ``PUBLISH_LUA`` reads them."""
    out, a = [], 2
    for k in range(1, len(keys), 3):
        n = int(args[a + 3])
        out.append((keys[k], n))
        a += 4 + n
    return out


class FakeRedis:
    def __init__(self) -> None:
        self.publish = HeldScript()

    def register_script(self, text: str) -> Any:
        return self.publish if text == busmod.PUBLISH_LUA else None


def event(tid: str, i: int = 0) -> dict[str, Any]:
    return {"type": "agent_thinking", "thread_id": tid, "run_id": f"run-{tid}", "event_id": f"{tid}-{i}",
            "data": {"i": i}}


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def new_bus() -> tuple[busmod.Bus, HeldScript]:
    redis = FakeRedis()
    return busmod.Bus(redis), redis.publish  # type: ignore[arg-type]


async def calls_out(bus: busmod.Bus) -> list[asyncio.Task[Any]]:
    """Publishes that take every call slot (one batch each, threads t0, t1, …), held at the script."""
    busy = [asyncio.create_task(bus.publish_events([event(f"t{i}")])) for i in range(busmod.CALLS_IN_FLIGHT)]
    await settle()
    return busy


def test_batches_waiting_while_calls_are_out_go_together_in_their_order() -> None:
    async def go() -> None:
        bus, script = new_bus()
        first = await calls_out(bus)
        assert len(script.calls) == busmod.CALLS_IN_FLIGHT
        later = [asyncio.create_task(bus.publish_events([event(f"u{i}"), event(f"u{i}", 1)])) for i in range(10)]
        await settle()
        assert len(script.calls) == busmod.CALLS_IN_FLIGHT  # they wait for a call to come back
        script.release(0)
        await settle()
        assert len(script.calls) == busmod.CALLS_IN_FLIGHT + 1
        assert script.batches(-1) == [(f"u{i}", 2) for i in range(10)]
        keys, args = script.calls[-1]
        assert keys[0] == busmod.ARCHIVE_STREAM and args[2:6] == [busmod.channel("u0"), "run-u0", "u0-1", 2]
        script.release_from(1)
        assert [await t for t in first][0][0] == 1
        assert [(await t)[0] for t in later] == [1] * 10
        assert all(p.startswith(b'{"seq":1,') for p in (await later[0])[1][:1])

    asyncio.run(go())


def test_a_call_holds_at_most_call_max_events_but_a_bigger_batch_still_goes_alone() -> None:
    async def go() -> None:
        bus, script = new_bus()
        busy = await calls_out(bus)
        big = busmod.CALL_MAX_EVENTS // 2 + 1
        waiting = [asyncio.create_task(bus.publish_events([event(f"b{j}", i) for i in range(big)]))
                   for j in range(2)]
        huge = asyncio.create_task(bus.publish_events([event("h", i) for i in range(busmod.CALL_MAX_EVENTS + 5)]))
        await settle()
        for i in range(busmod.CALLS_IN_FLIGHT):
            script.release(i)
        await settle()
        assert [script.batches(i) for i in range(busmod.CALLS_IN_FLIGHT, len(script.calls))] == [
            [("b0", big)], [("b1", big)], [("h", busmod.CALL_MAX_EVENTS + 5)]]
        script.release_from(busmod.CALLS_IN_FLIGHT)
        await asyncio.gather(*busy, *waiting, huge)

    asyncio.run(go())


def test_a_batch_whose_caller_gave_up_before_its_call_is_never_sent() -> None:
    async def go() -> None:
        bus, script = new_bus()
        busy = await calls_out(bus)
        dropped = asyncio.create_task(bus.publish_events([event("gone")]))
        kept = asyncio.create_task(bus.publish_events([event("kept")]))
        await settle()
        dropped.cancel()
        await settle()
        script.release(0)
        await settle()
        assert script.batches(-1) == [("kept", 1)]
        script.release_from(1)
        assert (await kept)[0] == 1
        await asyncio.gather(*busy)
        with pytest.raises(asyncio.CancelledError):
            await dropped

    asyncio.run(go())


def test_a_failed_call_fails_each_of_its_batches_and_the_next_call_still_goes() -> None:
    async def go() -> None:
        bus, script = new_bus()
        busy = await calls_out(bus)
        doomed = [asyncio.create_task(bus.publish_events([event(f"d{i}")])) for i in range(3)]
        await settle()
        script.release(0)
        await settle()
        after = asyncio.create_task(bus.publish_events([event("after")]))
        await settle()
        script.release(len(script.gates) - 1, busmod.RedisConnectionError("gone"))
        await settle()
        for task in doomed:
            with pytest.raises(busmod.RedisConnectionError):
                await task
        assert script.batches(-1) == [("after", 1)]
        for gate in script.gates:
            if not gate.done():
                gate.set_result(None)
        assert (await after)[0] == 1
        await asyncio.gather(*busy)

    asyncio.run(go())


def test_payloads_of_one_message_split_back_in_order() -> None:
    assert busmod.split_payloads(b'{"seq":1}') == [b'{"seq":1}']
    assert busmod.split_payloads(b'{"seq":1}\n{"seq":2}\n{"seq":3}') == [b'{"seq":1}', b'{"seq":2}', b'{"seq":3}']
