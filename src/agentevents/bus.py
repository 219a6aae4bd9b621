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

import asyncio
import logging
from collections import deque
from typing import Any

import hiredis
import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, ResponseError

from .protocol.envelope import splice_seq

log = logging.getLogger("agentevents.bus")

RUNS_STREAM = "ae:runs"
WORKER_GROUP = "workers"
CONTROL_CHANNEL = "ae:control"
RUNS_MAXLEN = 100_000
ARCHIVE_STREAM = "ae:archive"
ARCHIVE_GROUP = "archivers"

# Publish batches of events, each of one publisher to one thread, in one atomic step: for each
# batch assign the next seqs, append each event to the thread's stream, publish the batch on the
# thread's channel as one message (its payloads joined by newlines: a payload is compact JSON and
# never holds a raw newline); append every event of the call to the archive outbox as one entry
# (joined the same way). So no event is live without being in the history and due for the archive,
# and Redis pays one fsync (appendfsync always) for the whole call. A publisher sends its batches
# one after another; if its last recorded batch ends with a batch's last event id, that batch is a
# retry of one already applied (its reply was lost): it gets that batch's first seq and changes
# nothing. The stream and the publisher record are kept at least the history lifetime after the
# last event: an expiry below it is set to the lifetime plus a twenty-fourth (an hour of 24 h),
# so a busy thread rewrites it about once an hour, not with every batch (a read is cheaper
# than a write, which also goes to the append-only file).
# KEYS: archive outbox, then per batch: seq counter, thread stream, publisher record.
# ARGV: history length, history lifetime, then per batch: channel, publisher id, last event id,
#       n, event JSON × n.
# Returns per batch: first seq, 1 if newly published (0: a retry).
PUBLISH_LUA = """
local out, archive = {}, {}
local a = 3
local ttl = tonumber(ARGV[2]) * 1000
local slack = math.floor(ttl / 24)
for k = 2, #KEYS, 3 do
  local pub, last, n = ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])
  local first, fresh = nil, 1
  local rec = redis.call('HGET', KEYS[k + 2], pub)
  if rec then
    local sep = string.find(rec, ':', 1, true)
    if string.sub(rec, sep + 1) == last then first, fresh = tonumber(string.sub(rec, 1, sep - 1)), 0 end
  end
  if fresh == 1 then
    first = redis.call('INCRBY', KEYS[k], n) - n + 1
    local live = {}
    for i = 1, n do
      local seq = first + i - 1
      local payload = '{"seq":' .. seq .. ',' .. string.sub(ARGV[a + 3 + i], 2)
      redis.call('XADD', KEYS[k + 1], 'MAXLEN', '~', ARGV[1], seq .. '-0', 'p', payload)
      live[i] = payload
      archive[#archive + 1] = payload
    end
    redis.call('PUBLISH', ARGV[a], table.concat(live, '\\n'))
    if redis.call('PTTL', KEYS[k + 1]) < ttl then redis.call('PEXPIRE', KEYS[k + 1], ttl + slack) end
    redis.call('HSET', KEYS[k + 2], pub, first .. ':' .. last)
    if redis.call('PTTL', KEYS[k + 2]) < ttl then redis.call('PEXPIRE', KEYS[k + 2], ttl + slack) end
  end
  out[#out + 1] = first
  out[#out + 1] = fresh
  a = a + 4 + n
end
if #archive > 0 then redis.call('XADD', KEYS[1], '*', 'p', table.concat(archive, '\\n')) end
return out
"""
# The most events one publish call carries (more wait for the next call): bounds how long the
# script holds Redis, and so the latency it adds to everything else.
CALL_MAX_EVENTS = 256
# Publish calls out at once; what is published meanwhile waits and goes in the next call.
CALLS_IN_FLIGHT = 4
# Payloads inside one pub/sub message or one outbox entry.
PAYLOAD_SEPARATOR = b"\n"


def split_payloads(data: bytes) -> list[bytes]:
    """The payloads of one live message or outbox entry (see ``PUBLISH_LUA``)."""
    return data.split(PAYLOAD_SEPARATOR) if PAYLOAD_SEPARATOR in data else [data]


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
    client = aioredis.from_url(url, decode_responses=False, health_check_interval=5,
                               socket_connect_timeout=2, socket_keepalive=True, **kwargs)
    pool = client.connection_pool
    pool.connection_class = packing_with_hiredis(pool.connection_class)  # before any connection exists
    return client


def pack_command(args: tuple[Any, ...]) -> list[bytes]:
    """A command in Redis's protocol, packed by hiredis (C): the same bytes as redis-py's asyncio
    packer, which is Python and cost a publisher a sixth of its CPU (a publish call carries
    hundreds of arguments). A command name with a space (``"SCRIPT LOAD"``) is split, as there."""
    if isinstance(args[0], str):
        args = (*args[0].encode().split(), *args[1:])
    elif b" " in args[0]:
        args = (*args[0].split(), *args[1:])
    try:
        return [hiredis.pack_command(args)]
    except TypeError as exc:  # e.g. None or a bool: redis-py's own answer for them
        raise DataError(str(exc)) from None


def packing_with_hiredis(cls: type) -> type:
    """``cls`` (a redis-py asyncio connection class) packing its commands with ``pack_command``."""
    def pack(self: Any, *args: Any) -> list[bytes]:
        return pack_command(args)
    return type(f"HiredisPacking{cls.__name__}", (cls,), {"pack_command": pack})


class _Batch:
    """One publisher's events to one thread, waiting for (or in) a publish call."""

    __slots__ = ("tid", "publisher", "last_event_id", "bodies", "future")

    def __init__(self, tid: str, publisher: str, last_event_id: str, bodies: list[bytes]) -> None:
        self.tid = tid
        self.publisher = publisher
        self.last_event_id = last_event_id
        self.bodies = bodies
        self.future: asyncio.Future[tuple[int, bool]] = asyncio.get_running_loop().create_future()


def _fail(batches: list[_Batch], exc: Exception) -> None:
    for b in batches:
        if not b.future.done():
            b.future.set_exception(exc)


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
        self._waiting: deque[_Batch] = deque()
        self._in_flight = 0
        self._calls: set[asyncio.Task[None]] = set()

    # -- events ---------------------------------------------------------------------------
    async def publish_events(self, events: list[dict[str, Any]], publisher: str | None = None,
                             ) -> tuple[int, list[bytes], bool]:
        """Append and publish a batch of one thread's events, in order, atomically; returns
        (first seq, payloads with their seqs, newly_published). ``publisher`` (default: the
        events' run id) must send its batches one after another: retrying the last one with the
        same events is a no-op that returns the same seqs.

        Batches published at the same time in this process (other runs, other threads) travel
        together: while ``CALLS_IN_FLIGHT`` publish calls are at Redis the next batches wait, then
        go in one call (at most ``CALL_MAX_EVENTS`` events), so under load Redis runs one script
        and one fsync for many batches, and when idle a batch goes at once. A batch whose caller
        is cancelled before its call is sent is dropped."""
        bodies = [orjson.dumps(e) for e in events]
        batch = _Batch(events[0]["thread_id"], publisher or events[0]["run_id"], events[-1]["event_id"], bodies)
        self._waiting.append(batch)
        self._send_waiting()
        first, fresh = await batch.future
        return first, [splice_seq(b, first + i) for i, b in enumerate(bodies)], fresh

    async def publish_event(self, event: dict[str, Any]) -> tuple[int, bytes, bool]:
        """One event: (seq, payload with seq, newly_published)."""
        seq, payloads, fresh = await self.publish_events([event])
        return seq, payloads[0], fresh

    def _send_waiting(self) -> None:
        """Start publish calls for the waiting batches while fewer than ``CALLS_IN_FLIGHT`` are out."""
        while self._waiting and self._in_flight < CALLS_IN_FLIGHT:
            call: list[_Batch] = []
            size = 0
            while self._waiting and (not call or size + len(self._waiting[0].bodies) <= CALL_MAX_EVENTS):
                batch = self._waiting.popleft()
                if not batch.future.done():  # its caller gave up before it was sent
                    call.append(batch)
                    size += len(batch.bodies)
            if call:
                self._in_flight += 1
                task = asyncio.get_running_loop().create_task(self._send(call), name="bus-publish")
                self._calls.add(task)
                task.add_done_callback(self._calls.discard)

    async def _send(self, call: list[_Batch]) -> None:
        keys: list[str] = [ARCHIVE_STREAM]
        args: list[Any] = [self.history_maxlen, self.history_ttl_s]
        for b in call:
            keys += (seq_key(b.tid), stream_key(b.tid), publishers_key(b.tid))
            args += (channel(b.tid), b.publisher, b.last_event_id, len(b.bodies), *b.bodies)
        stopped = False
        try:
            reply = await self._publish(keys=keys, args=args)
        except Exception as exc:  # every batch of the call learns it (its publisher retries)
            _fail(call, exc)
        except BaseException:
            stopped = True
            _fail(call, RedisConnectionError("publish interrupted"))
            raise
        else:
            for i, b in enumerate(call):
                if not b.future.done():
                    b.future.set_result((int(reply[2 * i]), bool(reply[2 * i + 1])))
        finally:
            self._in_flight -= 1
            if stopped:
                waiting, self._waiting = list(self._waiting), deque()
                _fail(waiting, RedisConnectionError("publish interrupted"))
            else:
                self._send_waiting()

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
