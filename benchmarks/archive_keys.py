"""Benchmark: the archive's cost per event in PostgreSQL with random event ids (the earlier
``new_id``) against time-ordered ones (``envelope.new_event_id``), as the ``events`` table grows.

    .venv/bin/python benchmarks/archive_keys.py --rows 2000000

Needs the native stack up (``agentevents stack up``; AE_STACK_OFFSET / AE_STACK_DIR pick which).
Two scratch tables in a scratch schema (dropped at the end), each ``LIKE events INCLUDING ALL``
(the same primary key, unique ``event_id`` and ``run_id`` index), fed in turns with the same rows
the archivers write — 1,000 threads at a time, a run per 50 events, ~300-byte payloads — by COPY in
batches of 500, one transaction each; only the event ids differ. Both tables grow side by side and
share PostgreSQL's buffers, as one table's old and new rows would. Reported per design: rows/s,
and per row the WAL bytes (the WAL position around each batch) and the bytes the backend had
written to storage (WAL and the dirty buffers it evicted, from ``/proc/<pid>/io``); then the
ratios. Once the unique index on random ids outgrows the buffers, nearly every insert dirties a
page of it that is not in memory.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg

from agentevents.protocol.envelope import new_event_id
from agentevents.stack import native

SCHEMA = "bench_archive_keys"
COLUMNS = ("thread_id", "seq", "event_id", "run_id", "user_id", "type", "payload", "created_at")
DESIGNS = {"random": lambda: os.urandom(16).hex(), "ordered": new_event_id}
PAYLOAD = '{"reasoning":"' + "b" * 260 + '"}'


async def wal_position(conn: asyncpg.Connection) -> int:
    """Bytes of WAL written so far (this run is the cluster's only writer while it measures)."""
    return int(await conn.fetchval("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')"))


def written_by(pid: int) -> int | None:
    """Bytes the backend process has had written to storage so far (WAL and evicted buffers)."""
    try:
        with open(f"/proc/{pid}/io") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("write_bytes:"))
    except (OSError, StopIteration, ValueError):
        return None


def rows_for(design: str, threads: list[str], seqs: dict[str, int], batch: int, now: datetime) -> list[tuple]:
    make = DESIGNS[design]
    out: list[tuple[Any, ...]] = []
    for i in range(batch):
        tid = threads[i % len(threads)]
        seq = seqs[tid] = seqs[tid] + 1
        out.append((tid, seq, make(), f"{tid[:16]}{seq // 50:016x}", "bench-user", "agent_thinking", PAYLOAD, now))
    return out


async def main(args: argparse.Namespace) -> int:
    if not all(native.health().values()):
        print("archive_keys: the native stack is not up; start it with `agentevents stack up`", file=sys.stderr)
        return 2
    conn = await asyncpg.connect(native.stack_env()["AE_DATABASE_URL"])
    pid = conn.get_server_pid()
    totals = {d: {"s": 0.0, "wal": 0, "written": 0, "rows": 0} for d in DESIGNS}
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        await conn.execute(f"CREATE SCHEMA {SCHEMA}")
        for design in DESIGNS:
            await conn.execute(f"CREATE TABLE {SCHEMA}.{design} (LIKE public.events INCLUDING ALL)")
        threads = {d: [os.urandom(16).hex() for _ in range(args.threads)] for d in DESIGNS}
        seqs = {d: dict.fromkeys(threads[d], 0) for d in DESIGNS}
        started = time.monotonic()
        batches = args.rows // args.batch
        for n in range(batches):
            now = datetime.now(UTC)
            for design in DESIGNS:
                rows = rows_for(design, threads[design], seqs[design], args.batch, now)
                wal0, written0 = await wal_position(conn), written_by(pid)
                t0 = time.perf_counter()
                async with conn.transaction():
                    await conn.copy_records_to_table(design, schema_name=SCHEMA, records=rows, columns=COLUMNS)
                took = time.perf_counter() - t0
                wal1, written1 = await wal_position(conn), written_by(pid)
                t = totals[design]
                t["s"] += took
                t["rows"] += len(rows)
                t["wal"] += wal1 - wal0
                if written0 is not None and written1 is not None:
                    t["written"] += written1 - written0
            if (n + 1) % max(1, batches // 10) == 0:
                line = ", ".join(f"{d} {totals[d]['rows'] / totals[d]['s']:,.0f} rows/s" for d in DESIGNS)
                print(f"[{time.monotonic() - started:5.0f} s] {totals['random']['rows']:,} rows each: {line}",
                      flush=True)
        sizes = {d: await conn.fetchval(f"SELECT pg_size_pretty(pg_indexes_size('{SCHEMA}.{d}'))") for d in DESIGNS}
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        await conn.close()

    print(f"\n{args.rows:,} rows per design, {args.threads:,} threads, batches of {args.batch}; "
          f"shared_buffers of the stack's PostgreSQL; {time.monotonic() - started:.0f} s\n")
    print("| event ids | rows/s | WAL bytes/row | bytes written/row | indexes at the end |")
    print("|---|---|---|---|---|")
    for d, t in totals.items():
        rows = max(1, t["rows"])
        print(f"| {d} | {rows / t['s']:,.0f} | {t['wal'] / rows:,.0f} | {t['written'] / rows:,.0f} | {sizes[d]} |")
    r, o = totals["random"], totals["ordered"]
    print(f"\nordered / random: rows/s {(o['rows'] / o['s']) / (r['rows'] / r['s']):.2f}x, "
          f"WAL {o['wal'] / max(1, r['wal']):.2f}x, bytes written {o['written'] / max(1, r['written']):.2f}x")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows per design")
    parser.add_argument("--threads", type=int, default=1000, help="threads the rows are spread over")
    parser.add_argument("--batch", type=int, default=500, help="rows per COPY and transaction")
    args = parser.parse_args()
    if args.rows < args.batch or args.batch < 1 or args.threads < 1:
        parser.error("--rows must be at least --batch, and both --batch and --threads at least 1")
    sys.exit(asyncio.run(main(args)))
