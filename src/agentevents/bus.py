"""The Redis bus: run requests to workers, events to gateways, recent history for replay.

Per thread (keys share the ``{thread_id}`` hash tag, so they live on one Redis Cluster slot):
  ae:{tid}:seq     counter: the last seq assigned; never expires, so that no seq is ever reused
  ae:{tid}:stream  Stream of the thread's events; entry id ``<seq>-0``, field ``p`` = payload
  ae:{tid}:meta    hash: owner user_id, created_at; expires like the history, refreshed by each run
  ae:{tid}:runs    hash: ``n`` runs so far, ``last`` run id; kept RUN_TTL_S after the last run
  ae:{tid}:pub     hash: per publisher (run id) its last batch, ``<first seq>:<last event_id>``,
                   so that a retried batch is a no-op (idempotent publish without a key per event)
  ae:ev:{tid}      pub/sub channel of live events
Global:
  ae:archive       Stream: the archive outbox. Every published event is appended here in the same
                   script that assigns its seq; archivers (consumer group ``archivers``) copy it
                   to PostgreSQL and then acknowledge and delete it (``store/archiver.py``)
  ae:runs          Stream of run requests, consumer group ``workers``
  ae:run:<run_id>  hash: user_id, thread_id, status, worker (its existence: the run was submitted)
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

# Publish a batch of one publisher's events to one thread, in one atomic step: assign the next
# seqs, append each event to the thread's stream and to the archive outbox, publish each — so no
# event is live without being in the history and due for the archive, and Redis pays one fsync
# (appendfsync always) for the whole batch. A publisher sends its batches one after another; if
# its last recorded batch ends with this batch's last event id, this call is a retry of a batch
# already applied (its reply was lost): it returns that batch's first seq and changes nothing.
# KEYS: seq counter, thread stream, publisher record, archive outbox.
# ARGV: history length, history lifetime, channel, publisher id, last event id, event JSON × n.
PUBLISH_LUA = """
local rec = redis.call('HGET', KEYS[3], ARGV[4])
if rec then
  local sep = string.find(rec, ':', 1, true)
  if string.sub(rec, sep + 1) == ARGV[5] then return {tonumber(string.sub(rec, 1, sep - 1)), 0} end
end
local n = #ARGV - 5
local first = redis.call('INCRBY', KEYS[1], n) - n + 1
for i = 1, n do
  local seq = first + i - 1
  local payload = '{"seq":' .. seq .. ',' .. string.sub(ARGV[5 + i], 2)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], seq .. '-0', 'p', payload)
  redis.call('XADD', KEYS[4], '*', 'p', payload)
  redis.call('PUBLISH', ARGV[3], payload)
end
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[4], first .. ':' .. ARGV[5])
redis.call('EXPIRE', KEYS[3], ARGV[2])
return {first, 1}
"""


# A concurrent-run slot: check and take in one step, so parallel start_agents cannot exceed it.
RESERVE_LUA = """
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""

# Queue a run, and claim its new thread, in one step: a request refused before this leaves nothing
# behind, and a retry of this same call (redis-py resends it when the reply is lost) finds the run
# already there and adds nothing. Returns 1 (queued, now or by the earlier attempt) or 0 (the new
# thread's id is taken).
# KEYS: run hash, runs stream, thread meta. ARGV: user_id, thread_id, agent_type, request JSON,
# runs stream length, run hash lifetime, thread lifetime, created_at of a new thread ('' if none).
SUBMIT_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
if ARGV[8] ~= '' then
  if redis.call('HSETNX', KEYS[3], 'user_id', ARGV[1]) == 0 then return 0 end
  redis.call('HSET', KEYS[3], 'created_at', ARGV[8])
end
redis.call('EXPIRE', KEYS[3], ARGV[7])
redis.call('HSET', KEYS[1], 'user_id', ARGV[1], 'thread_id', ARGV[2], 'status', 'queued', 'agent_type', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'r', ARGV[4])
return 1
"""
RUN_TTL_S = 7 * 86400

# Count a run in its thread and swap in its id as the last one; returns (earlier runs, previous id).
# (A record kept as a list of every run id, as earlier versions did, is converted first.)
# KEYS: the thread's runs record. ARGV: run id, lifetime.
RECORD_RUN_LUA = """
if redis.call('TYPE', KEYS[1]).ok == 'list' then
  local n, last = redis.call('LLEN', KEYS[1]), redis.call('LINDEX', KEYS[1], -1)
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'n', n, 'last', last)
end
local previous = redis.call('HGET', KEYS[1], 'last')
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HSET', KEYS[1], 'last', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return {n - 1, previous}
"""


def seq_key(tid: str) -> str:
    return f"ae:{{{tid}}}:seq"


def stream_key(tid: str) -> str:
    return f"ae:{{{tid}}}:stream"


def meta_key(tid: str) -> str:
    return f"ae:{{{tid}}}:meta"


def publishers_key(tid: str) -> str:
    return f"ae:{{{tid}}}:pub"


def runs_key(tid: str) -> str:
    return f"ae:{{{tid}}}:runs"


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
        self._submit = redis.register_script(SUBMIT_LUA)
        self._record_run = redis.register_script(RECORD_RUN_LUA)

    # -- events ---------------------------------------------------------------------------
    async def publish_events(self, events: list[dict[str, Any]], publisher: str | None = None,
                             ) -> tuple[int, list[bytes], bool]:
        """Append and publish a batch of one thread's events, in order, atomically; returns
        (first seq, payloads with their seqs, newly_published). ``publisher`` (default: the
        events' run id) must send its batches one after another: retrying the last one with the
        same events is a no-op that returns the same seqs."""
        tid = events[0]["thread_id"]
        bodies = [orjson.dumps(e) for e in events]
        first, fresh = await self._publish(
            keys=[seq_key(tid), stream_key(tid), publishers_key(tid), ARCHIVE_STREAM],
            args=[self.history_maxlen, self.history_ttl_s, channel(tid), publisher or events[0]["run_id"],
                  events[-1]["event_id"], *bodies])
        first = int(first)
        return first, [splice_seq(b, first + i) for i, b in enumerate(bodies)], bool(fresh)

    async def publish_event(self, event: dict[str, Any]) -> tuple[int, bytes, bool]:
        """One event: (seq, payload with seq, newly_published)."""
        seq, payloads, fresh = await self.publish_events([event])
        return seq, payloads[0], fresh

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
        """Record a new thread's owner; False if the id is already taken. (``submit_run`` claims the
        thread of a run it queues by itself.)"""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(meta_key(tid), "user_id", user_id)
            pipe.hsetnx(meta_key(tid), "created_at", created_at)
            pipe.expire(meta_key(tid), self.history_ttl_s, nx=True)
            created, _, _ = await pipe.execute()
        return bool(created)

    async def record_run(self, tid: str, run_id: str) -> tuple[int, str | None]:
        """Count a run in its thread; returns (earlier runs in the thread, the previous run id).
        The record holds two fields whatever the number of runs, and lives as long as the run
        records (RUN_TTL_S after the thread's last run)."""
        previous_runs, previous = await self._record_run(keys=[runs_key(tid)], args=[run_id, RUN_TTL_S])
        return int(previous_runs), (previous.decode() if previous else None)

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

    async def submit_run(self, request: dict[str, Any], *, new_thread_at: str | None = None) -> bool:
        """Queue a run for the workers, once however often it is retried. With ``new_thread_at``
        (its creation time) the run's thread is new and is claimed for the user in the same step;
        False, and nothing written, when that thread id is already taken. The thread's owner record
        lives as long as its history and is refreshed by every run."""
        body = orjson.dumps(request)  # before anything is written: a request that cannot be sent is not half sent
        tid = request["thread_id"]
        queued = await self._submit(
            keys=[run_key(request["run_id"]), RUNS_STREAM, meta_key(tid)],
            args=[request["user_id"], tid, request["agent_type"], body, RUNS_MAXLEN, RUN_TTL_S,
                  self.history_ttl_s, new_thread_at or ""])
        return bool(queued)

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
