"""Benchmark: end-to-end delivery through HAProxy, gateways, Redis and workers of the native stack.

    .venv/bin/python benchmarks/delivery.py --users 50 --events 48

Each user runs one scripted agent that thinks ``--events`` times back to back (48 stays inside
the thinking throttle's burst of 50, so nothing is coalesced) and reports: events delivered per
second, agent_started latency from the request, delivery latency from each event's timestamp
to its receipt (p50/p95/p99/max), and the gateways' RSS before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import datetime

import psutil

from agentevents.stack import native
from agentevents.testing import RecordingClient, TokenFactory


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def rss_mb() -> float:
    return sum(psutil.Process(native.component_pid(g)).memory_info().rss for g in native.GATEWAYS) / 2**20


async def one_user(url: str, tokens: TokenFactory, index: int, events: int) -> tuple[float, list[float], int]:
    client = RecordingClient(url, tokens.token(f"bench-{index}-{time.time_ns()}", permissions=["agents:script"]),
                             name=f"u{index}")
    await client.connect()
    steps = [{"think": f"thought {i}"} for i in range(events)]
    sent = time.monotonic()
    accepted = await client.start_agent("scripted", "bench", options={"steps": steps})
    run_id = accepted.data["run_id"]
    started = await client.wait_for(lambda f: f.type == "agent_started", 30, "agent_started")
    await client.wait_run_end(run_id, 120)
    lags = [f.wall - datetime.fromisoformat(f.data["timestamp"].replace("Z", "+00:00")).timestamp()
            for f in client.events(run_id=run_id)]
    count = len(client.events(run_id=run_id))
    await client.close()
    return started.at - sent, lags, count


async def main(users: int, events: int) -> None:
    env = native.stack_env()
    tokens = TokenFactory(env["AE_JWT_SECRET"])
    before = rss_mb()
    t0 = time.monotonic()
    results = await asyncio.gather(*(one_user(env["AE_WS_URL"], tokens, i, events) for i in range(users)))
    wall = time.monotonic() - t0
    starts = [r[0] * 1000 for r in results]
    lags = [lag * 1000 for r in results for lag in r[1]]
    total = sum(r[2] for r in results)
    expected = users * (events + 2)
    print(f"users={users} thoughts/run={events} delivered={total}/{expected} wall={wall:.2f}s "
          f"throughput={total / wall:.0f} events/s")
    print(f"agent_started ms: p50={statistics.median(starts):.1f} p95={pct(starts, .95):.1f} max={max(starts):.1f}")
    print(f"delivery lag ms: p50={pct(lags, .5):.1f} p95={pct(lags, .95):.1f} p99={pct(lags, .99):.1f} "
          f"max={max(lags):.1f}")
    print(f"gateway RSS MB: before={before:.1f} after={rss_mb():.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--events", type=int, default=48)
    args = parser.parse_args()
    asyncio.run(main(args.users, args.events))
