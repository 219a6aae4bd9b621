"""The bus on the stack's real Redis: a batch publishes atomically, in order, with gapless seqs;
a retried batch (its reply lost) is a no-op; no key is left per event."""

from __future__ import annotations

import asyncio
import uuid

from agentevents import bus as busmod
from agentevents.protocol import envelope as ev
from agentevents.stack import native


def events(thread_id: str, run_id: str, n: int) -> list[dict]:
    return [ev.build_event(ev.AGENT_THINKING, thread_id=thread_id, run_id=run_id, user_id="bus-test",
                           agent_name="math", data={"reasoning": f"r{i}", "step": i}) for i in range(n)]


def test_a_retried_batch_is_a_no_op_and_no_key_is_left_per_event(target):
    async def go() -> None:
        redis = busmod.connect(f"redis://127.0.0.1:{native.REDIS_PORT}/0")
        bus = busmod.Bus(redis)
        tid, run_id = uuid.uuid4().hex, uuid.uuid4().hex
        try:
            first_batch = events(tid, run_id, 5)
            first, payloads, fresh = await bus.publish_events(first_batch, "pub-1")
            assert (first, fresh) == (1, True)
            again, again_payloads, fresh = await bus.publish_events(first_batch, "pub-1")  # reply lost: retried
            assert (again, fresh, again_payloads) == (1, False, payloads)
            second, _, fresh = await bus.publish_events(events(tid, run_id, 3), "pub-1")
            assert (second, fresh) == (6, True)
            other, _, _ = await bus.publish_events(events(tid, run_id, 2), "pub-2")  # another run on the thread
            assert other == 9
            history = await bus.history(tid, 1, 100)
            assert [seq for seq, _ in history] == list(range(1, 11))
            assert [p for _, p in history[:5]] == payloads
            keys = {k.decode() async for k in redis.scan_iter(match=f"ae:{{{tid}}}:*")}
            assert keys == {busmod.seq_key(tid), busmod.stream_key(tid), busmod.publishers_key(tid)}
            assert await redis.hlen(busmod.publishers_key(tid)) == 2
        finally:
            await redis.delete(busmod.seq_key(tid), busmod.stream_key(tid), busmod.publishers_key(tid))
            await redis.aclose()

    asyncio.run(go())


def test_a_threads_run_record_stays_two_fields_and_expires(target):
    async def go() -> None:
        redis = busmod.connect(f"redis://127.0.0.1:{native.REDIS_PORT}/0")
        bus = busmod.Bus(redis)
        tid, old = uuid.uuid4().hex, uuid.uuid4().hex
        try:
            answers = [await bus.record_run(tid, f"run-{i}") for i in range(50)]
            assert answers[:3] == [(0, None), (1, "run-0"), (2, "run-1")]
            assert answers[-1] == (49, "run-48")
            assert await redis.hgetall(busmod.runs_key(tid)) == {b"n": b"50", b"last": b"run-49"}
            assert 0 < await redis.ttl(busmod.runs_key(tid)) <= busmod.RUN_TTL_S
            await redis.rpush(busmod.runs_key(old), "a", "b")  # the list an earlier version kept
            assert await bus.record_run(old, "c") == (2, "b")
            assert await redis.hgetall(busmod.runs_key(old)) == {b"n": b"3", b"last": b"c"}
        finally:
            await redis.delete(busmod.runs_key(tid), busmod.runs_key(old))
            await redis.aclose()

    asyncio.run(go())
