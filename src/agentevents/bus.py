"""The Redis bus: run requests to workers, events to gateways, recent history for replay.

Per thread (keys share the ``{thread_id}`` hash tag, so they live on one Redis Cluster slot):
  ae:{tid}:seq     counter: the last seq assigned
  ae:{tid}:stream  Stream of the thread's events; entry id ``<seq>-0``, field ``p`` = payload
  ae:{tid}:meta    hash: owner user_id, created_at
  ae:{tid}:eid:<event_id>  seq already assigned to an event_id (idempotent publish)
  ae:ev:{tid}      pub/sub channel of live events
Global:
  ae:archive       Stream: the archive outbox. Every published event is appended here in the same
                   script that assigns its seq; archivers (consumer group ``archivers``) copy it
                   to PostgreSQL and then acknowledge and delete it (``store/archiver.py``)
  ae:runs          Stream of run requests, consumer group ``workers``
  ae:run:<run_id>  hash: user_id, thread_id, status, worker
  ae:control       pub/sub channel: cancel / respond
  ae:user:<uid>:active  set of the user's active run ids
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ResponseError

from .protocol.envelope import splice_seq

log = logging.getLogger("agentevents.bus")

RUNS_STREAM = "ae:runs"
WORKER_GROUP = "workers"
CONTROL_CHANNEL = "ae:control"
RUNS_MAXLEN = 100_000
ARCHIVE_STREAM = "ae:archive"
ARCHIVE_GROUP = "archivers"

# Assign the next seq, append to the thread's stream and to the archive outbox, publish — in one
# atomic step, so no event can be live without being due for the archive. A retried publish of
# the same event_id returns the seq it already has and publishes nothing.
PUBLISH_LUA = """
local existing = redis.call('GET', KEYS[3])
if existing then return {tonumber(existing), 0} end
local seq = redis.call('INCR', KEYS[1])
local payload = '{"seq":' .. seq .. ',' .. string.sub(ARGV[1], 2)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], seq .. '-0', 'p', payload)
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[3], seq, 'EX', ARGV[3])
redis.call('XADD', KEYS[4], '*', 'p', payload)
redis.call('PUBLISH', ARGV[4], payload)
return {seq, 1}
"""


# A concurrent-run slot: check and take in one step, so parallel start_agents cannot exceed it.
RESERVE_LUA = """
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""


def seq_key(tid: str) -> str:
    return f"ae:{{{tid}}}:seq"


def stream_key(tid: str) -> str:
    return f"ae:{{{tid}}}:stream"


def meta_key(tid: str) -> str:
    return f"ae:{{{tid}}}:meta"


def eid_key(tid: str, event_id: str) -> str:
    return f"ae:{{{tid}}}:eid:{event_id}"


def channel(tid: str) -> str:
    return f"ae:ev:{tid}"


def thread_of_channel(name: str) -> str:
    return name[len("ae:ev:"):]


def run_key(run_id: str) -> str:
    return f"ae:run:{run_id}"


def active_key(user_id: str) -> str:
    return f"ae:user:{user_id}:active"


def connect(url: str, **kwargs: Any) -> aioredis.Redis:
    # After a Redis restart every pooled connection is stale: without retries the first command
    # on each fails (a worker then drops the run it just took). Retry on a fresh connection.
    kwargs.setdefault("retry", Retry(ExponentialBackoff(cap=0.5, base=0.05), 3))
    return aioredis.from_url(url, decode_responses=False, health_check_interval=5,
                             socket_connect_timeout=2, socket_keepalive=True, **kwargs)


class Bus:
    """Thin async layer over Redis; every method is one round trip (or one script)."""

    def __init__(self, redis: aioredis.Redis, *, history_maxlen: int = 2000, history_ttl_s: int = 86400):
        self.redis = redis
        self.history_maxlen = history_maxlen
        self.history_ttl_s = history_ttl_s
        self._publish = redis.register_script(PUBLISH_LUA)
        self._reserve = redis.register_script(RESERVE_LUA)

    # -- events ---------------------------------------------------------------------------
    async def publish_event(self, event: dict[str, Any]) -> tuple[int, bytes, bool]:
        """Append and publish; returns (seq, payload with seq, newly_published)."""
        tid, eid = event["thread_id"], event["event_id"]
        body = orjson.dumps(event)
        seq, fresh = await self._publish(
            keys=[seq_key(tid), stream_key(tid), eid_key(tid, eid), ARCHIVE_STREAM],
            args=[body, self.history_maxlen, self.history_ttl_s, channel(tid)])
        return int(seq), splice_seq(body, int(seq)), bool(fresh)

    async def head_seq(self, tid: str) -> int:
        value = await self.redis.get(seq_key(tid))
        return int(value) if value else 0

    async def history(self, tid: str, first: int, last: int) -> list[tuple[int, bytes]]:
        """Events with first <= seq <= last that the stream still holds, in order."""
        if last < first:
            return []
        entries = await self.redis.xrange(stream_key(tid), min=f"{first}-0", max=f"{last}-0")
        return [(int(eid.split(b"-")[0]), fields[b"p"]) for eid, fields in entries]

    async def oldest_seq(self, tid: str) -> int | None:
        entries = await self.redis.xrange(stream_key(tid), count=1)
        return int(entries[0][0].split(b"-")[0]) if entries else None

    # -- threads --------------------------------------------------------------------------
    async def claim_thread(self, tid: str, user_id: str, created_at: str) -> bool:
        """Record a new thread's owner; False if the id is already taken."""
        created = await self.redis.hsetnx(meta_key(tid), "user_id", user_id)
        if created:
            await self.redis.hset(meta_key(tid), "created_at", created_at)
        return bool(created)

    async def record_run(self, tid: str, run_id: str) -> tuple[int, str | None]:
        """Append a run to its thread; returns (earlier runs in the thread, the previous run id)."""
        key = f"ae:{{{tid}}}:runs"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, run_id)
            pipe.lrange(key, -2, -2)
            length, previous = await pipe.execute()
        return int(length) - 1, (previous[0].decode() if previous and int(length) > 1 else None)

    async def thread_owner(self, tid: str) -> str | None:
        owner = await self.redis.hget(meta_key(tid), "user_id")
        return owner.decode() if owner else None

    # -- runs -----------------------------------------------------------------------------
    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(RUNS_STREAM, WORKER_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def submit_run(self, request: dict[str, Any]) -> None:
        rid, uid = request["run_id"], request["user_id"]
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(run_key(rid), mapping={"user_id": uid, "thread_id": request["thread_id"],
                                             "status": "queued", "agent_type": request["agent_type"]})
            pipe.expire(run_key(rid), 7 * 86400)
            pipe.xadd(RUNS_STREAM, {"r": orjson.dumps(request)}, maxlen=RUNS_MAXLEN, approximate=True)
            await pipe.execute()

    async def reserve_run(self, user_id: str, run_id: str, limit: int) -> bool:
        """Take one of the user's concurrent-run slots, atomically; False when none is free."""
        return bool(await self._reserve(keys=[active_key(user_id)], args=[run_id, limit, 86400]))

    async def release_run(self, user_id: str, run_id: str) -> None:
        await self.redis.srem(active_key(user_id), run_id)

    async def run_info(self, run_id: str) -> dict[str, str]:
        raw = await self.redis.hgetall(run_key(run_id))
        return {k.decode(): v.decode() for k, v in raw.items()}

    async def set_run_status(self, run_id: str, user_id: str, status: str, worker: str = "") -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(run_key(run_id), mapping={"status": status, "worker": worker})
            if status not in ("queued", "running", "waiting_approval"):
                pipe.srem(active_key(user_id), run_id)
            await pipe.execute()

    # -- control --------------------------------------------------------------------------
    async def send_control(self, message: dict[str, Any]) -> None:
        rid = message["run_id"]
        if message["op"] == "cancel":
            await self.redis.set(f"ae:run:{rid}:cancel", b"1", ex=3600)
        elif message["op"] == "respond":
            key = f"ae:run:{rid}:answer:{message['approval_id']}"
            await self.redis.rpush(key, orjson.dumps(message))
            await self.redis.expire(key, 3600)
        await self.redis.publish(CONTROL_CHANNEL, orjson.dumps(message))

    async def cancel_requested(self, run_id: str) -> bool:
        return bool(await self.redis.exists(f"ae:run:{run_id}:cancel"))

    async def wait_answer(self, run_id: str, approval_id: str, timeout_s: float) -> dict[str, Any] | None:
        got = await self.redis.blpop([f"ae:run:{run_id}:answer:{approval_id}"], timeout=timeout_s)
        return orjson.loads(got[1]) if got else None
