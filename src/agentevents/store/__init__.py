"""PostgreSQL: schema migrations, the event archive, runs, threads, and the delivery audit log.

The event archive is fed from Redis by ``archiver.Archiver``. Runs, threads and the delivery
audit are batched off the hot path by ``BatchWriter``; when PostgreSQL is down they wait in a
bounded buffer and flow on recovery. A row PostgreSQL refuses never blocks a batch: the batch is
retried row by row and the refused row is logged and counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime
from importlib import resources
from typing import Any

import asyncpg

log = logging.getLogger("agentevents.store")

MIGRATION_LOCK = 7_346_211


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Nothing to undo when a connection goes back to one of our pools (see ``create_pool``)."""


async def create_pool(dsn: str, **kwargs: Any) -> asyncpg.Pool:
    """A pool for the project's own queries. They leave no session state behind (no SET, LISTEN
    or cursor outside a transaction; the migration lock is released in ``finally``), so a
    connection goes back without asyncpg's reset query (``pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL``), a round trip to PostgreSQL per release; a transaction left open is
    still rolled back. The SQL tool's pool runs users' queries and keeps the reset."""
    return await asyncpg.create_pool(dsn, min_size=1, max_size=kwargs.pop("max_size", 10),
                                     command_timeout=10, timeout=5, reset=_keep_session, **kwargs)


def migrations() -> list[tuple[int, str, str]]:
    folder = resources.files(__package__).joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text()))
    return sorted(found)


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply pending migrations in order, under an advisory lock; returns what was applied."""
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                           "(version integer PRIMARY KEY, name text NOT NULL, "
                           "applied_at timestamptz NOT NULL DEFAULT now())")
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, sql in migrations():
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
            applied.append(name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied


# SQLSTATE classes of errors caused by a row's content (22: data exception, 54: program limit
# exceeded), as opposed to PostgreSQL being unreachable, restarting or paused.
DATA_ERROR_CLASSES = ("22", "54")


def is_data_error(exc: BaseException) -> bool:
    state = getattr(exc, "sqlstate", None) or ""
    return isinstance(exc, asyncpg.PostgresError) and state[:2] in DATA_ERROR_CLASSES


def text_safe(value: Any) -> Any:
    """A text value PostgreSQL can store: NUL (which no text column can hold) becomes U+FFFD."""
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


def text_safe_row(row: tuple) -> tuple:
    return tuple(text_safe(v) for v in row)


def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def archived_events(pool: asyncpg.Pool, thread_id: str, first: int, last: int) -> list[tuple[int, bytes]]:
    rows = await pool.fetch("SELECT seq, payload FROM events WHERE thread_id = $1 AND seq BETWEEN $2 AND $3 "
                            "ORDER BY seq", thread_id, first, last)
    return [(r["seq"], r["payload"].encode()) for r in rows]


async def thread_owner(pool: asyncpg.Pool, thread_id: str) -> str | None:
    return await pool.fetchval("SELECT user_id FROM threads WHERE thread_id = $1", thread_id)


async def preferences(pool: asyncpg.Pool, user_id: str) -> dict[str, Any]:
    import orjson
    raw = await pool.fetchval("SELECT preferences::text FROM user_preferences WHERE user_id = $1", user_id)
    return orjson.loads(raw) if raw else {}


# -- batched writes ---------------------------------------------------------------------------

async def _write_delivery_ranges(conn: asyncpg.Connection, rows: list[tuple]) -> None:
    await conn.copy_records_to_table(
        "delivery_ranges", records=rows,
        columns=["thread_id", "first_seq", "last_seq", "user_id", "connection_id", "server_id", "first_at", "last_at"])


async def _write_threads(conn: asyncpg.Connection, rows: list[tuple]) -> None:
    await conn.executemany("INSERT INTO threads (thread_id, user_id, created_at) VALUES ($1, $2, $3) "
                           "ON CONFLICT DO NOTHING", rows)


async def _write_runs(conn: asyncpg.Connection, rows: list[tuple]) -> None:
    await conn.executemany(
        "INSERT INTO runs (run_id, thread_id, user_id, agent_type, status, worker_id, created_at, "
        "completed_at, duration_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
        "ON CONFLICT (run_id) DO UPDATE SET status = EXCLUDED.status, worker_id = EXCLUDED.worker_id, "
        "completed_at = EXCLUDED.completed_at, duration_ms = EXCLUDED.duration_ms", rows)


WRITERS: dict[str, Callable[[asyncpg.Connection, list[tuple]], Awaitable[None]]] = {
    "threads": _write_threads, "runs": _write_runs, "delivery_ranges": _write_delivery_ranges,
}
ORDER = ("threads", "runs", "delivery_ranges")


class BatchWriter:
    """Buffers rows per table and writes them in batches; survives PostgreSQL outages.

    The buffer is bounded (``capacity`` rows over all tables). When it is full the oldest
    delivery-audit rows go first, then the oldest runs and threads; every drop is counted and
    logged. A row PostgreSQL refuses for its content is logged and counted in ``rejected``;
    the rest of its batch is written.
    """

    def __init__(self, dsn: str, *, capacity: int = 200_000, batch: int = 500, interval_s: float = 0.1):
        self.dsn = dsn
        self.capacity = capacity
        self.batch = batch
        self.interval_s = interval_s
        self.buffers: dict[str, deque[tuple]] = {name: deque() for name in ORDER}
        self.pool: asyncpg.Pool | None = None
        self.dropped = 0
        self.rejected = 0
        self.written = 0
        self.failures = 0
        self.healthy = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def pending(self) -> int:
        return sum(len(b) for b in self.buffers.values())

    def add(self, table: str, row: tuple) -> None:
        if self.pending() >= self.capacity:
            victim = next((b for name in ("delivery_ranges", "runs", "threads") if (b := self.buffers[name])), None)
            if victim:
                victim.popleft()
                self.dropped += 1
                if self.dropped % 1000 == 1:
                    log.error("store_buffer_full dropped=%d capacity=%d", self.dropped, self.capacity)
        self.buffers[table].append(text_safe_row(row))
        if self.pending() >= self.batch:
            self._wake.set()

    def start(self, pool: asyncpg.Pool | None = None) -> None:
        self.pool = pool
        self._task = asyncio.create_task(self._run(), name="batch-writer")

    async def stop(self, timeout_s: float = 5.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self.pending() and asyncio.get_running_loop().time() < deadline and self.healthy:
            self._wake.set()
            await asyncio.sleep(0.05)
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.pool:
            await self.pool.close()

    async def flush_once(self) -> int:
        if self.pool is None:
            self.pool = await create_pool(self.dsn, max_size=4)
        count = 0
        async with self.pool.acquire() as conn:
            for table in ORDER:
                buf = self.buffers[table]
                while buf:
                    rows = [buf[i] for i in range(min(self.batch, len(buf)))]
                    await self._write(conn, table, rows)
                    for _ in rows:
                        buf.popleft()
                    count += len(rows)
        self.written += count
        return count

    async def _write(self, conn: asyncpg.Connection, table: str, rows: list[tuple]) -> None:
        try:
            async with conn.transaction():
                await WRITERS[table](conn, rows)
        except asyncpg.PostgresError as exc:
            if not is_data_error(exc):
                raise
            for row in rows:  # one at a time: a refused row holds back no other
                try:
                    async with conn.transaction():
                        await WRITERS[table](conn, [row])
                except asyncpg.PostgresError as row_exc:
                    if not is_data_error(row_exc):
                        raise
                    self.rejected += 1
                    log.error("store_row_rejected table=%s key=%s error=%s", table, row[0], row_exc)

    async def _run(self) -> None:
        backoff = 0.2
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            except TimeoutError:
                pass
            self._wake.clear()
            if not self.pending() and self.pool is not None:
                continue
            try:
                await self.flush_once()
                if not self.healthy:
                    log.info("store_available pending=%d", self.pending())
                self.healthy = True
                backoff = 0.2
            except Exception as exc:
                # Not only OSError/PostgresError/InterfaceError: when PostgreSQL dies mid-batch asyncpg
                # can raise InternalClientError ("another operation is in progress"), which used to end
                # this task for good (the archive silently stopped). Retry later on a fresh pool.
                self.failures += 1
                if self.healthy or self.failures % 20 == 1:
                    log.warning("store_unavailable pending=%d error=%s", self.pending(), exc)
                self.healthy = False
                pool, self.pool = self.pool, None
                if pool is not None:
                    pool.terminate()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
