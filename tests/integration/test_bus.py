"""The bus on the stack's real Redis: a batch publishes atomically, in order, with gapless seqs;
a retried batch (its reply lost) is a no-op; no key is left per event; batches published at once
share calls; a thread's history is kept at least its lifetime after its last event."""

from __future__ import annotations

import asyncio
import uuid

from agentevents import bus as busmod
from agentevents.protocol import envelope as ev
from agentevents.stack import native
from agentevents.testing.polling import poll


def events(thread_id: str, run_id: str, n: int) -> list[dict]:
    return [ev.build_event(ev.AGENT_THINKING, thread_id=thread_id, run_id=run_id, user_id="bus-test",
                           agent_name="math", data={"reasoning": f"r{i}", "step": i}) for i in range(n)]


def on_stack(body, **bus_options) -> None:
    """Run ``body(redis, bus, thread)`` against the stack's Redis; ``thread()`` makes a thread id,
    whose keys are deleted afterwards."""
    async def go() -> None:
        redis = busmod.connect(f"redis://127.0.0.1:{native.REDIS_PORT}/0")
        made: list[str] = []

        def thread() -> str:
            made.append(uuid.uuid4().hex)
            return made[-1]
        try:
            await body(redis, busmod.Bus(redis, **bus_options), thread)
        finally:
            for tid in made:
                await redis.delete(busmod.seq_key(tid), busmod.stream_key(tid), busmod.publishers_key(tid),
                                   busmod.runs_key(tid))
            await redis.aclose()

    asyncio.run(go())


def test_a_retried_batch_is_a_no_op_and_no_key_is_left_per_event(target):
    async def body(redis, bus, thread) -> None:
        tid, run_id = thread(), uuid.uuid4().hex
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

    on_stack(body)


def test_a_threads_run_record_stays_two_fields_and_expires(target):
    async def body(redis, bus, thread) -> None:
        tid, old = thread(), thread()
        answers = [await bus.record_run(tid, f"run-{i}") for i in range(50)]
        assert answers[:3] == [(0, None), (1, "run-0"), (2, "run-1")]
        assert answers[-1] == (49, "run-48")
        assert await redis.hgetall(busmod.runs_key(tid)) == {b"n": b"50", b"last": b"run-49"}
        assert 0 < await redis.ttl(busmod.runs_key(tid)) <= busmod.RUN_TTL_S
        await redis.rpush(busmod.runs_key(old), "a", "b")  # the list an earlier version kept
        assert await bus.record_run(old, "c") == (2, "b")
        assert await redis.hgetall(busmod.runs_key(old)) == {b"n": b"3", b"last": b"c"}

    on_stack(body)


def test_history_is_kept_at_least_its_lifetime_after_the_last_event_without_an_expiry_write_per_batch(target):
    ttl_ms = 3_600_000

    async def body(redis, bus, thread) -> None:
        tid, run_id = thread(), uuid.uuid4().hex
        keys = (busmod.stream_key(tid), busmod.publishers_key(tid))
        await bus.publish_events(events(tid, run_id, 2), "pub-1")
        set_at = [await redis.pttl(k) for k in keys]
        assert all(ttl_ms < t <= ttl_ms * 25 // 24 for t in set_at), set_at
        await redis.pexpire(keys[0], ttl_ms - 5_000)  # as if an hour had passed since it was set
        await redis.pexpire(keys[1], ttl_ms + 1_000)  # not yet below the lifetime
        await bus.publish_events(events(tid, run_id, 1), "pub-1")
        refreshed, untouched = await redis.pttl(keys[0]), await redis.pttl(keys[1])
        assert ttl_ms < refreshed <= ttl_ms * 25 // 24, refreshed
        assert ttl_ms < untouched <= ttl_ms + 1_000, untouched

    on_stack(body, history_ttl_s=ttl_ms // 1000)


async def evalsha_calls(redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def test_batches_published_at_once_share_calls_and_stay_in_order_live_in_history_and_archive(target):
    """40 conversations publish 10 batches each at the same time: the bus sends them in far fewer
    publish calls than batches, yet each conversation's live messages split into its events in seq
    order, its history is gapless, a retry inside a shared call stays a no-op, and the archive
    gets every event once."""
    threads, batches, per_batch = 40, 10, 3

    async def body(redis, bus, thread) -> None:
        tids = [thread() for _ in range(threads)]
        listener = redis.pubsub()
        await listener.subscribe(*[busmod.channel(t) for t in tids])
        live: dict[str, list[list[int]]] = {t: [] for t in tids}  # per thread: the seqs of each message

        async def listen() -> None:
            async for message in listener.listen():
                if message["type"] == "message":
                    tid = busmod.thread_of_channel(message["channel"].decode())
                    live[tid].append([ev.peek_head(p)[0] for p in busmod.split_payloads(message["data"])])

        listening = asyncio.create_task(listen())
        last: dict[str, list[dict]] = {}

        async def conversation(tid: str) -> list[int]:
            firsts = []
            for _ in range(batches):
                last[tid] = events(tid, "run-" + tid, per_batch)
                first, _, fresh = await bus.publish_events(last[tid], "pub-" + tid)
                assert fresh, tid
                firsts.append(first)
            return firsts

        try:
            calls_before = await evalsha_calls(redis)
            firsts = await asyncio.gather(*[conversation(t) for t in tids])
            calls = await evalsha_calls(redis) - calls_before
            assert all(f == list(range(1, batches * per_batch, per_batch)) for f in firsts), firsts
            assert calls < threads * batches / 2, f"{calls} publish calls for {threads * batches} batches"

            # A retry of each last batch (its reply lost) shares calls with another run's new batch.
            retried = [bus.publish_events(last[t], "pub-" + t) for t in tids]
            fresh = [bus.publish_events(events(t, "other-" + t, 2), "other-" + t) for t in tids]
            answers = await asyncio.gather(*retried, *fresh)
            total = batches * per_batch
            assert [a[0:3:2] for a in answers[:threads]] == [(total - per_batch + 1, False)] * threads
            assert [a[0:3:2] for a in answers[threads:]] == [(total + 1, True)] * threads

            expected = list(range(1, total + 3))
            seen = await poll(lambda: asyncio.sleep(0, live), lambda v: all(
                sum(len(m) for m in v[t]) == len(expected) for t in tids), 10)
            for t in tids:
                assert [s for m in seen[t] for s in m] == expected, (t, seen[t])
                assert len(seen[t]) == batches + 1, "one live message per batch, not per event"
                assert [seq for seq, _ in await bus.history(t, 1, 1000)] == expected
            for t in tids[:5]:
                rows = await poll(lambda t=t: target.control.archived_events(t),
                                  lambda rows: len(rows) >= len(expected), 30, interval_s=0.3)
                assert [r["seq"] for r in rows] == expected, (t, [r["seq"] for r in rows])
        finally:
            listening.cancel()
            await listener.aclose()

    on_stack(body)
