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
