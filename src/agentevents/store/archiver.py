"""The event archive, fed from Redis: every published event reaches PostgreSQL's ``events`` table.

The publish script appends the events of each publish call to the ``ae:archive`` outbox stream
(one entry, the payloads joined by newlines) in the same atomic step that assigns their seqs
(``bus.PUBLISH_LUA``), so an event cannot be live without being due for the
archive. Archivers — one per worker, in the consumer group ``archivers`` — read the outbox, write
a batch (one COPY; a batch holding events stored already goes through ``ON CONFLICT DO NOTHING``:
at least once, idempotent by ``(thread_id, seq)`` and ``event_id``), and only then acknowledge and
delete its entries. What a killed archiver had read
stays pending in the group: the same consumer name takes it back at restart, any other archiver
claims it once it has been idle for ``CLAIM_IDLE_MS``. A PostgreSQL outage holds the entries in
Redis (nothing is dropped); a Redis restart keeps them in its append-only file.

A row PostgreSQL refuses never blocks the others: the batch is retried row by row, and a row
that cannot be stored is logged with its ids, counted (``ae_archive_rejected_total``) and
acknowledged. Text columns other than ``payload`` cannot hold NUL in PostgreSQL, so a NUL in an
id (a user id comes from a token's claim) is stored as U+FFFD; ``payload`` is the exact JSON
text that was published (JSON escapes NUL), so a replay from the archive is byte for byte what
live delivery sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from prometheus_client import Counter, Gauge
from redis.exceptions import RedisError, ResponseError

from ..bus import ARCHIVE_GROUP, ARCHIVE_STREAM, split_payloads
from . import create_pool, is_data_error, parse_ts, text_safe

log = logging.getLogger("agentevents.archiver")

ARCHIVED = Counter("ae_archive_events_total", "Events written to the PostgreSQL archive")
REJECTED = Counter("ae_archive_rejected_total", "Events PostgreSQL refused to archive (logged with their ids)")
BACKLOG_AGE = Gauge("ae_archive_backlog_age_seconds", "Age of the oldest event not yet archived")

CLAIM_IDLE_MS = 10_000
# After a read that did not fill a batch, an archiver lets the outbox fill for this long before
# reading again: under load it then writes a few hundred events per COPY and commit instead of a
# handful (each batch costs a read, a transaction with its fsync, an acknowledgement); when idle
# an event reaches the archive within about this much more time. Live delivery and replay from
# Redis do not wait for the archive.
LINGER_S = 0.05
CLAIM_EVERY_S = 2.0
# The archive is stuck when the oldest event not yet archived is older than this.
STUCK_AFTER_S = 30.0

COLUMNS = ("thread_id", "seq", "event_id", "run_id", "user_id", "type", "payload", "created_at")
STAGING = ("CREATE TEMP TABLE IF NOT EXISTS events_staging (LIKE events INCLUDING DEFAULTS) "
           "ON COMMIT DELETE ROWS")
INSERT_STAGED = (f"INSERT INTO events ({', '.join(COLUMNS)}) SELECT {', '.join(COLUMNS)} FROM events_staging "
                 "ON CONFLICT DO NOTHING")
INSERT_ONE = (f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
              "ON CONFLICT DO NOTHING")


class BadEntry(ValueError):
    """An outbox entry that is not a published event (it is logged, counted and dropped)."""


def archive_row(payload: bytes) -> tuple[Any, ...]:
    """The ``events`` row of one published payload; text ids made storable, payload untouched."""
    try:
        event = orjson.loads(payload)
        return (text_safe(event["thread_id"]), int(event["seq"]), text_safe(event["event_id"]),
                text_safe(event["run_id"]), text_safe(event["user_id"]), text_safe(event["type"]),
                payload.decode(), parse_ts(event["timestamp"]))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
        raise BadEntry(f"{type(exc).__name__}: {exc}") from None


def backlog_age_s(oldest_entry_id: bytes | str | None, now_s: float) -> float:
    """Seconds since the oldest outbox entry was added (its stream id starts with the ms time)."""
    if not oldest_entry_id:
        return 0.0
    text = oldest_entry_id.decode() if isinstance(oldest_entry_id, bytes) else oldest_entry_id
    return max(0.0, now_s - int(text.split("-", 1)[0]) / 1000)


@dataclass
class ArchiveStatus:
    postgres: bool
    backlog: int
    oldest_age_s: float
    archived: int
    rejected: int

    @property
    def stuck(self) -> bool:
        return self.oldest_age_s > STUCK_AFTER_S

    def as_dict(self) -> dict[str, Any]:
        return {"postgres": self.postgres, "backlog": self.backlog, "oldest_age_s": round(self.oldest_age_s, 1),
                "archived": self.archived, "rejected": self.rejected, "stuck": self.stuck}


class Archiver:
    def __init__(self, redis: Any, dsn: str, consumer: str, *, batch: int = 500, block_ms: int = 100,
                 linger_s: float = LINGER_S) -> None:
        self.redis = redis
        self.dsn = dsn
        self.consumer = consumer
        self.batch = batch
        self.block_ms = block_ms
        self.linger_s = linger_s
        self.pool: asyncpg.Pool | None = None
        self.postgres_ok = False
        self.archived = 0
        self.rejected = 0
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="archiver")

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Archive what is already read (if PostgreSQL answers in time), then stop. What is not
        archived stays in the outbox for the next archiver."""
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.pool is not None:
            await asyncio.wait_for(self.pool.close(), timeout_s)

    async def status(self) -> ArchiveStatus:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xlen(ARCHIVE_STREAM)
            pipe.xrange(ARCHIVE_STREAM, count=1)
            length, oldest = await pipe.execute()
        age = backlog_age_s(oldest[0][0] if oldest else None, time.time())
        BACKLOG_AGE.set(age)
        return ArchiveStatus(self.postgres_ok, int(length), age, self.archived, self.rejected)

    # -- the loop -----------------------------------------------------------------------------
    async def _run(self) -> None:
        backoff = 0.2
        while True:
            try:
                await self._ensure_group()
                await self._drain_own_pending()
                last_claim = 0.0
                while True:
                    if time.monotonic() - last_claim > CLAIM_EVERY_S:
                        last_claim = time.monotonic()
                        _next, claimed, *_ = await self.redis.xautoclaim(
                            ARCHIVE_STREAM, ARCHIVE_GROUP, self.consumer, CLAIM_IDLE_MS, count=self.batch)
                        if claimed:
                            log.info("archive_claimed consumer=%s entries=%d", self.consumer, len(claimed))
                            await self._archive(claimed)
                    got = await self.redis.xreadgroup(ARCHIVE_GROUP, self.consumer, {ARCHIVE_STREAM: ">"},
                                                      count=self.batch, block=self.block_ms)
                    read = 0
                    for _stream, entries in got or []:
                        read += len(entries)
                        await self._archive(entries)
                    backoff = 0.2
                    if 0 < read < self.batch and self.linger_s > 0:
                        await asyncio.sleep(self.linger_s)  # let the next batch gather (see LINGER_S)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("archive_redis_unavailable consumer=%s error=%s", self.consumer, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    async def _ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(ARCHIVE_STREAM, ARCHIVE_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _drain_own_pending(self) -> None:
        """What this consumer name had read but not acknowledged before a restart."""
        while True:
            got = await self.redis.xreadgroup(ARCHIVE_GROUP, self.consumer, {ARCHIVE_STREAM: "0"},
                                              count=self.batch)
            entries = [e for _s, batch in got or [] for e in batch]
            if not entries:
                return
            await self._archive(entries)

    async def _archive(self, entries: list[tuple[bytes, dict[bytes, bytes] | None]]) -> None:
        """Write the entries' events, then acknowledge and delete them. Retries (holding the
        entries, refreshing their idle time) until PostgreSQL takes them."""
        ids = [entry_id for entry_id, _fields in entries]
        rows: dict[tuple[str, int], tuple[Any, ...]] = {}
        for entry_id, fields in entries:
            if not fields or b"p" not in fields:
                continue  # deleted meanwhile: another archiver already wrote it
            for payload in split_payloads(fields[b"p"]):  # one entry per publish call
                try:
                    row = archive_row(payload)
                except BadEntry as exc:
                    self._reject(entry_id, None, str(exc))
                    continue
                rows[(row[0], row[1])] = row
        if rows:
            await self._write_until_done(list(rows.values()), ids)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(ARCHIVE_STREAM, ARCHIVE_GROUP, *ids)
            pipe.xdel(ARCHIVE_STREAM, *ids)
            await pipe.execute()

    async def _write_until_done(self, rows: list[tuple[Any, ...]], ids: list[bytes]) -> None:
        backoff, failures = 0.2, 0
        while True:
            try:
                if self.pool is None:
                    self.pool = await create_pool(self.dsn, max_size=2)
                async with self.pool.acquire() as conn:
                    try:
                        await self._write_batch(conn, rows)
                    except asyncpg.PostgresError as exc:
                        if not is_data_error(exc):
                            raise
                        await self._write_isolating(conn, rows)
                if not self.postgres_ok:
                    log.info("archive_available consumer=%s", self.consumer)
                self.postgres_ok = True
                self.archived += len(rows)
                ARCHIVED.inc(len(rows))
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # PostgreSQL down, restarting or paused: keep the entries, retry
                failures += 1
                if self.postgres_ok or failures % 20 == 1:
                    log.warning("archive_unavailable consumer=%s held=%d error=%s", self.consumer, len(rows), exc)
                self.postgres_ok = False
                pool, self.pool = self.pool, None
                if pool is not None:
                    pool.terminate()
                # Still ours: tell the other archivers not to claim them while we retry.
                await self.redis.xclaim(ARCHIVE_STREAM, ARCHIVE_GROUP, self.consumer, 0, ids, justid=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    @staticmethod
    async def _write_batch(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
        """COPY straight into the archive; a batch holding events archived already (a batch taken
        back after a crash, or claimed from another archiver) goes through a staging table and
        ``ON CONFLICT DO NOTHING`` instead, so each event is stored once."""
        try:
            async with conn.transaction():
                await conn.copy_records_to_table("events", records=rows, columns=list(COLUMNS))
            return
        except asyncpg.UniqueViolationError:
            pass
        async with conn.transaction():
            await conn.execute(STAGING)
            await conn.copy_records_to_table("events_staging", records=rows, columns=list(COLUMNS))
            await conn.execute(INSERT_STAGED)

    async def _write_isolating(self, conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
        """One row at a time, so that a row PostgreSQL refuses holds back no other."""
        for row in rows:
            try:
                await conn.execute(INSERT_ONE, *row)
            except asyncpg.PostgresError as exc:
                if not is_data_error(exc):
                    raise
                self._reject(None, row, f"{type(exc).__name__}: {exc}")

    def _reject(self, entry_id: bytes | None, row: tuple[Any, ...] | None, error: str) -> None:
        self.rejected += 1
        REJECTED.inc()
        if row is not None:
            log.error("archive_row_rejected thread_id=%s seq=%s event_id=%s error=%s", row[0], row[1], row[2], error)
        else:
            log.error("archive_entry_rejected entry_id=%s error=%s", entry_id, error)
