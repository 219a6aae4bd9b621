"""The worker process: takes run requests from the Redis ``ae:runs`` stream (consumer group
``workers``), runs them through the execution engine, and answers cancel/respond controls.

A worker that dies mid-run leaves its runs pending in the group. Live workers refresh the idle
time of their own pending runs; any worker claims runs idle longer than ``LOST_AFTER_MS`` and
ends them with an ``agent_error`` (worker_lost) and a failed ``agent_completed``, so no user
waits forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import time
from typing import Any

import orjson
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from .. import store
from ..agents.registry import AgentRegistry, default_registry
from ..bus import CONTROL_CHANNEL, RUNS_STREAM, WORKER_GROUP, Bus, connect
from ..config import Settings
from ..health import serve_health
from ..metrics import RUNS_FINISHED
from ..store.archiver import Archiver
from ..tools.sql import install_demo_schema
from .bridge import EventBridge, until_redis
from .engine import ExecutionEngine, run_context

log = logging.getLogger("agentevents.worker")

LOST_AFTER_MS = 15_000
# Personalisation is optional: a slow or paused PostgreSQL must not hold a run back.
PREFERENCES_TIMEOUT_S = 0.3
KEEPALIVE_S = 3.0


class Worker:
    def __init__(self, settings: Settings, registry: AgentRegistry | None = None) -> None:
        self.settings = settings
        self.worker_id = f"worker-{settings.server_id}"
        self.redis = connect(settings.redis_url)
        self.bus = Bus(self.redis, history_maxlen=settings.history_maxlen, history_ttl_s=settings.history_ttl_s)
        self.archive = store.BatchWriter(settings.database_url)
        self.archiver = Archiver(self.redis, settings.database_url, self.worker_id)
        self.db: Any = None
        self.engine = ExecutionEngine(self.bus, self.archive, registry or default_registry(), settings,
                                      worker_id=self.worker_id)
        self.slots = asyncio.Semaphore(settings.worker_concurrency)
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.stopping = asyncio.Event()
        self.redis_ok = False
        self.lookups: set[asyncio.Future[Any]] = set()

    async def health(self) -> dict[str, Any]:
        """503 while Redis is unreachable or the event archive is stuck (its oldest event waiting
        longer than ``archiver.STUCK_AFTER_S``)."""
        archive: dict[str, Any] = {"stuck": False}
        if self.redis_ok:
            with contextlib.suppress(RedisError, OSError):
                archive = (await self.archiver.status()).as_dict()
        ok = self.redis_ok and not archive["stuck"]
        return {"status": "ok" if ok else "degraded", "component": "worker", "id": self.worker_id,
                "redis": self.redis_ok, "postgres": self.archive.healthy, "running": len(self.tasks),
                "records_pending": self.archive.pending(), "archive": archive}

    async def _connect_database(self) -> None:
        """Migrations, demo schema and the tools' pool; retried in the background until it works."""
        backoff = 0.5
        while not self.stopping.is_set():
            try:
                pool = await store.create_pool(self.settings.database_url, max_size=5)
                async with pool.acquire() as conn:
                    await store.migrate(conn)
                    await install_demo_schema(conn, self.settings.sql_database_url)
                self.db = pool
                self.engine.db = pool
                log.info("database_ready worker=%s", self.worker_id)
                return
            except Exception as exc:  # keep running without the database; retry
                log.warning("database_unavailable worker=%s error=%s", self.worker_id, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5)

    async def run(self, health_port: int = 0) -> None:
        self.archive.start()
        self.archiver.start()
        db_task = asyncio.create_task(self._connect_database())
        health = await serve_health(self.settings.host, health_port, self.health) if health_port else None
        loops = [asyncio.create_task(c) for c in (self._consume(), self._control(), self._keepalive())]
        await self.stopping.wait()
        for task in loops + [db_task]:
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks.values()), timeout=10)
        if health:
            health.close()
        await self.archive.stop()
        await self.archiver.stop()
        await self.engine.close()
        if self.db is not None:
            await self.db.close()
        await self.redis.aclose()

    # -- run requests -----------------------------------------------------------------------
    async def _consume(self) -> None:
        backoff = 0.2
        while True:
            try:
                await self.bus.ensure_group()
                self.redis_ok = True
                await self._abandon_own_pending()
                while True:
                    await self.slots.acquire()
                    self.slots.release()
                    # Take no more requests than there are free slots: the rest stay in the
                    # stream for workers with room.
                    free = max(1, self.settings.worker_concurrency - len(self.tasks))
                    batch = await self.redis.xreadgroup(WORKER_GROUP, self.worker_id, {RUNS_STREAM: ">"},
                                                        count=free, block=1000)
                    self.redis_ok = True
                    backoff = 0.2
                    for _stream, entries in batch or []:
                        for entry_id, fields in entries:
                            self._spawn(entry_id.decode(), orjson.loads(fields[b"r"]))
                    await self._reap_lost()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self.redis_ok:
                    log.warning("redis_unavailable worker=%s error=%s", self.worker_id, exc)
                self.redis_ok = False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    def _spawn(self, entry_id: str, request: dict[str, Any]) -> None:
        async def go() -> None:
            async with self.slots:
                status = "failed"
                try:
                    status = await self.engine.execute(request, self._preferences(request["user_id"]))
                except Exception:
                    log.exception("run_error run_id=%s", request.get("run_id"))
                    await self._end_unfinished(request, "the worker could not run this agent")
                finally:
                    RUNS_FINISHED.labels(status).inc()
                    await self._ack(entry_id)
                    self.tasks.pop(entry_id, None)

        self.tasks[entry_id] = asyncio.create_task(go(), name=f"run-entry-{entry_id}")

    async def _preferences(self, user_id: str) -> dict[str, Any] | None:
        if self.db is None:
            return None
        # Not wait_for: cancelling an asyncpg query waits for the server, the very thing that hangs.
        lookup = asyncio.ensure_future(store.preferences(self.db, user_id))
        done, _ = await asyncio.wait({lookup}, timeout=PREFERENCES_TIMEOUT_S)
        if not done:
            log.warning("preferences_unavailable user_id=%s error=no answer within %gs", user_id,
                        PREFERENCES_TIMEOUT_S)
            self.lookups.add(lookup)  # left to finish (command_timeout) in the background
            lookup.add_done_callback(lambda t: (self.lookups.discard(t), t.cancelled() or t.exception()))
            return None
        try:
            return lookup.result() or None
        except Exception as exc:
            log.warning("preferences_unavailable user_id=%s error=%s", user_id, exc)
            return None

    async def _ack(self, entry_id: str) -> None:
        for _ in range(100):
            try:
                await self.redis.xack(RUNS_STREAM, WORKER_GROUP, entry_id)
                return
            except (RedisError, OSError):
                await asyncio.sleep(0.2)

    async def _abandon_own_pending(self) -> None:
        """Runs this consumer name held before a restart were interrupted: end them honestly."""
        pending = await self.redis.xpending_range(RUNS_STREAM, WORKER_GROUP, min="-", max="+", count=1000,
                                                  consumername=self.worker_id)
        ids = [p["message_id"] for p in pending if p["message_id"].decode() not in self.tasks]
        if ids:
            claimed = await self.redis.xclaim(RUNS_STREAM, WORKER_GROUP, self.worker_id, 0, ids)
            await self._end_lost(claimed)

    async def _reap_lost(self) -> None:
        _next, claimed, *_ = await self.redis.xautoclaim(RUNS_STREAM, WORKER_GROUP, self.worker_id,
                                                         LOST_AFTER_MS, count=20)
        await self._end_lost(claimed)

    async def _end_lost(self, entries: list[Any]) -> None:
        for entry_id, fields in entries:
            if not fields:
                await self._ack(entry_id.decode())
                continue
            request = orjson.loads(fields[b"r"])
            run = run_context(request)
            info = await self.bus.run_info(run.run_id)
            if info.get("status") not in (None, "queued", "running", "waiting_approval"):
                await self._ack(entry_id.decode())
                continue
            log.warning("run_lost run_id=%s thread_id=%s previous_worker=%s", run.run_id, run.thread_id,
                        info.get("worker"))
            await self._end_unfinished(request, "the worker running this agent stopped; the run cannot finish",
                                       code="worker_lost")
            await self._ack(entry_id.decode())

    async def _end_unfinished(self, request: dict[str, Any], message: str, code: str = "worker_error") -> None:
        """A run that cannot finish still ends for its user: an error event and a failed completion.
        Each step waits for Redis as long as this worker runs (the events keep their ids, so a
        retry never doubles one); a worker stopped meanwhile leaves the run to the reaper."""
        run = run_context(request)
        bridge = EventBridge(self.bus, run, publish_deadline_s=math.inf)
        try:
            await until_redis(lambda: self.bus.set_run_status(run.run_id, run.user_id, "failed", self.worker_id),
                              self.stopping)
            await bridge.error(code, message, recoverable=False)
            await bridge.completed("failed", result=None, summary="The run was interrupted by a worker failure.",
                                   duration_ms=int((time.time() - run.requested_at) * 1000), error={"code": code})
        except Exception:
            log.exception("run_end_failed run_id=%s", run.run_id)

    async def _keepalive(self) -> None:
        """Refresh the idle time of our own pending runs so others do not think them lost."""
        while True:
            await asyncio.sleep(KEEPALIVE_S)
            ids = list(self.tasks)
            if not ids:
                continue
            with contextlib.suppress(RedisError, OSError):
                await self.redis.xclaim(RUNS_STREAM, WORKER_GROUP, self.worker_id, 0, ids, justid=True)

    # -- control ----------------------------------------------------------------------------
    async def _control(self) -> None:
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CONTROL_CHANNEL)
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    control = orjson.loads(message["data"])
                    if control.get("op") == "cancel" and self.engine.cancel(control.get("run_id", "")):
                        log.info("run_cancel run_id=%s", control["run_id"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, RedisConnectionError):
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()


async def run_worker(settings: Settings, health_port: int = 0) -> None:
    worker = Worker(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stopping.set)
    await worker.run(health_port)
