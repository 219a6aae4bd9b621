"""Benchmark: Redis memory and AOF rewrites after publishing many events, per-event idempotency
keys (the earlier design, as baseline) against the bounded design of ``bus.PUBLISH_LUA``.

    .venv/bin/python benchmarks/redis_memory.py --events 1000000 --threads 10000

Each design gets a fresh private ``redis-server`` (loopback, a spare port, append-only file
with ``appendfsync everysec`` — memory does not depend on the fsync policy — and the rewrite
thresholds of its stack: Redis's defaults for the earlier design, ``REDIS_AOF_REWRITE`` now). The
same ~250-byte events go to the same threads. The bounded design's archive outbox is drained as
the archivers do it (read in their group, acknowledged and deleted, 500 at a time).
Reported per design: keys, ``used_memory``, AOF size and rewrites, and the time taken; and the
ratio of the two.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from agentevents.bus import ARCHIVE_GROUP, ARCHIVE_STREAM, Bus
from agentevents.protocol import envelope as ev
from agentevents.stack.native import REDIS_AOF_REWRITE

# The earlier publish script: one key per event id, kept as long as the history (24 h).
PER_EVENT_KEYS_LUA = """
local existing = redis.call('GET', KEYS[3])
if existing then return {tonumber(existing), 0} end
local seq = redis.call('INCR', KEYS[1])
local payload = '{"seq":' .. seq .. ',' .. string.sub(ARGV[1], 2)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], seq .. '-0', 'p', payload)
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[3], seq, 'EX', ARGV[3])
redis.call('PUBLISH', ARGV[4], payload)
return {seq, 1}
"""

HISTORY, TTL = 2000, 86400


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    def __init__(self, extra: tuple[str, ...] = ()) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ae-redis-bench-"))
        self.port = free_port()
        self.proc = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.dir), "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
             "--protected-mode", "yes", *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def client(self) -> aioredis.Redis:
        redis = aioredis.Redis(host="127.0.0.1", port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                await redis.ping()
                return redis
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit(f"redis-server on port {self.port} did not start") from None
                await asyncio.sleep(0.05)  # polling for the server to accept connections

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def body(thread_id: str, run_id: str, i: int) -> dict:
    return ev.build_event(ev.AGENT_THINKING, thread_id=thread_id, run_id=run_id, user_id="bench-user",
                          agent_name="scripted", data={"reasoning": f"thought {i} " + "x" * 40, "step": i,
                                                       "metadata": {}})


async def figures(redis: aioredis.Redis, started: float) -> dict:
    memory = await redis.info("memory")
    persistence = await redis.info("persistence")
    return {"keys": await redis.dbsize(), "used_memory_mb": round(memory["used_memory"] / 2**20, 1),
            "dataset_mb": round(memory["used_memory_dataset"] / 2**20, 1),
            "overhead_mb": round(memory["used_memory_overhead"] / 2**20, 1),
            "outbox_kb": round((await redis.memory_usage(ARCHIVE_STREAM) or 0) / 1024, 1),
            "aof_mb": round(persistence.get("aof_current_size", 0) / 2**20, 1),
            "aof_rewrites": persistence.get("aof_rewrites", 0), "seconds": round(time.monotonic() - started, 1)}


async def per_event_keys(redis: aioredis.Redis, threads: list[str], per_thread: int) -> None:
    script = redis.register_script(PER_EVENT_KEYS_LUA)
    await redis.script_load(PER_EVENT_KEYS_LUA)
    pipe = redis.pipeline(transaction=False)
    queued = 0
    for i in range(per_thread):
        for tid in threads:
            event = body(tid, tid, i)
            keys = [f"ae:{{{tid}}}:seq", f"ae:{{{tid}}}:stream", f"ae:{{{tid}}}:eid:{event['event_id']}"]
            pipe.evalsha(script.sha, 3, *keys, orjson.dumps(event), HISTORY, TTL, f"ae:ev:{tid}")
            queued += 1
            if queued % 2000 == 0:
                await pipe.execute()
    await pipe.execute()


async def bounded(redis: aioredis.Redis, threads: list[str], per_thread: int, batch: int) -> None:
    bus = Bus(redis, history_maxlen=HISTORY, history_ttl_s=TTL)
    await redis.script_load(bus._publish.script)
    for start in range(0, per_thread, batch):
        calls = []
        for tid in threads:
            events = [body(tid, tid, i) for i in range(start, min(start + batch, per_thread))]
            calls.append(bus.publish_events(events, f"{tid}:bench"))
            if len(calls) == 200:
                await asyncio.gather(*calls)
                calls = []
        await asyncio.gather(*calls)
        await archive_like_the_archivers(redis)


async def archive_like_the_archivers(redis: aioredis.Redis) -> None:
    """Read the outbox in the archivers' group, 500 at a time, then acknowledge and delete (as
    store/archiver.py does once PostgreSQL has them)."""
    try:
        await redis.xgroup_create(ARCHIVE_STREAM, ARCHIVE_GROUP, id="0", mkstream=True)
    except ResponseError:
        pass  # the group exists
    while True:
        found = await redis.xreadgroup(ARCHIVE_GROUP, "bench", {ARCHIVE_STREAM: ">"}, count=500)
        ids = [entry_id for _stream, entries in found for entry_id, _fields in entries]
        if not ids:
            return
        async with redis.pipeline(transaction=True) as pipe:
            pipe.xack(ARCHIVE_STREAM, ARCHIVE_GROUP, *ids)
            pipe.xdel(ARCHIVE_STREAM, *ids)
            await pipe.execute()


async def measure(design: str, threads: list[str], per_thread: int, batch: int) -> dict:
    # Each design with its stack's rewrite thresholds: Redis's defaults then, the stack's own now.
    server = PrivateRedis(() if design == "per-event keys" else REDIS_AOF_REWRITE)
    try:
        redis = await server.client()
        started = time.monotonic()
        if design == "per-event keys":
            await per_event_keys(redis, threads, per_thread)
        else:
            await bounded(redis, threads, per_thread, batch)
        out = await figures(redis, started)
        await redis.aclose()
        return out
    finally:
        server.stop()


def table(results: dict[str, dict], events: int, threads: int) -> str:
    base, new = results["per-event keys"], results["bounded"]
    lines = [f"{events:,} events over {threads:,} threads ({events // threads} each, history {HISTORY})", "",
             "| design | keys | used_memory MB | AOF MB | AOF rewrites | seconds |", "|---|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['keys']:,} | {r['used_memory_mb']} | {r['aof_mb']} | {r['aof_rewrites']} "
                     f"| {r['seconds']} |")
    lines += ["", f"bounded / per-event keys: keys {new['keys'] / base['keys']:.3f}×, "
                  f"memory {new['used_memory_mb'] / base['used_memory_mb']:.2f}×, "
                  f"AOF {new['aof_mb'] / max(base['aof_mb'], 0.1):.2f}×"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in all (default 1,000,000)")
    parser.add_argument("--threads", type=int, default=10_000, help="threads they are spread over (default 10,000)")
    parser.add_argument("--batch", type=int, default=10, help="events per publish in the bounded design")
    parser.add_argument("--out", type=Path, help="also write the table here (markdown)")
    args = parser.parse_args()
    if args.events < args.threads or args.threads < 1:
        sys.exit("redis_memory: --events must be at least --threads, and --threads at least 1")
    threads = [uuid.uuid4().hex for _ in range(args.threads)]
    per_thread = args.events // args.threads
    results = {design: asyncio.run(measure(design, threads, per_thread, args.batch))
               for design in ("per-event keys", "bounded")}
    text = table(results, per_thread * args.threads, args.threads)
    print(f"$ {' '.join([os.path.basename(sys.executable), *sys.argv])}\n{text}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
