"""The measurements, the same for every system: memory per idle connection, then for each client
count a saturation run and the fixed-rate runs, each a bounded window checked event by event."""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from . import procs, stats
from .checker import DeliveryChecker
from .harness import close_clients, drain, open_clients
from .systems import BURST_STEPS, UNTHROTTLED_STEPS, AgentDriver, Session, System
from .wire import EVENT_BYTES


@dataclass
class Plan:
    duration_s: float = 3.0
    rates: list[int] = field(default_factory=lambda: [1000, 5000])
    clients: list[int] = field(default_factory=lambda: [1, 100, 1000])
    saturation_clients: list[int] = field(default_factory=lambda: [1, 100])
    memory_connections: list[int] = field(default_factory=lambda: [1000, 10000])
    drain_s: float = 15.0
    settle_s: float = 30.0
    single_runs: int = 3
    event_bytes: int = EVENT_BYTES

    @classmethod
    def quick(cls) -> Plan:
        return cls(duration_s=1.0, clients=[1, 100], saturation_clients=[100], memory_connections=[1000],
                   drain_s=5.0, settle_s=5.0, single_runs=1)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Runner:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.memory_done: set[str] = set()

    async def run_system(self, system: System, out: dict[str, Any]) -> None:
        plan = self.plan
        log(f"{system.key}: starting")
        await system.start()
        out["versions"] = system.versions()
        if system.memory_family not in self.memory_done and plan.memory_connections:
            restart = getattr(system, "restart_gateways", None)
            if restart is not None:
                log(f"{system.key}: restarting the gateways for a clean memory baseline")
                await restart()
            await self.warm_up(system)
            out["memory"] = await self.memory(system)
            self.memory_done.add(system.memory_family)
        else:
            await self.warm_up(system)
        for n in plan.clients:
            await self.sessions(system, n, out)
        if isinstance(system.publisher, AgentDriver):
            out["agent_single"] = await self.agent_single(system)

    async def warm_up(self, system: System) -> None:
        """A few connections and events first: imports, pools and caches happen outside the windows."""
        session = system.new_session(2)
        await system.prepare(session)
        checker = DeliveryChecker(session.streams)
        session.clients = await open_clients(system.protocol(session), session.streams, checker)
        try:
            if isinstance(system.publisher, AgentDriver):
                await system.publisher.run(session, 0, 0.3)
            else:
                published = await system.publisher.run(session, 200, 0.5)
                await drain(checker, published, limit_s=5)
        finally:
            await close_clients(session.clients)
        await system.settle(self.plan.settle_s)

    async def sessions(self, system: System, n: int, out: dict[str, Any]) -> None:
        plan = self.plan
        session = system.new_session(n)
        await system.prepare(session)
        checker = DeliveryChecker(session.streams)
        t0 = time.monotonic()
        session.clients = await open_clients(system.protocol(session), session.streams, checker)
        log(f"{system.key}: {n:,} clients open in {time.monotonic() - t0:.1f}s")
        try:
            if n in plan.saturation_clients:
                out["runs"].append(await self.measure(system, session, checker, 0))
            for rate in plan.rates:
                out["runs"].append(await self.measure(system, session, checker, rate))
        finally:
            await close_clients(session.clients)
        await asyncio.sleep(0.5)

    async def measure(self, system: System, session: Session, checker: DeliveryChecker, rate: float) -> dict[str, Any]:
        plan = self.plan
        await system.settle(plan.settle_s)
        pids = system.cpu_pids()
        pub_pid = system.publisher_pid()
        cpu0 = procs.cpu_snapshot(pids)
        pub0 = procs.tree_cpu_s(pub_pid) if pub_pid else None
        gc.collect()
        gc.disable()  # no collector pauses of the harness inside the window
        try:
            checker.begin()
            start = time.time()
            published = await system.publisher.run(session, rate, plan.duration_s)
            published_at = time.time()
            await drain(checker, published, limit_s=plan.drain_s)
        finally:
            gc.enable()
        await system.settle(plan.settle_s)
        cpu = procs.cpu_delta(cpu0, procs.cpu_snapshot(pids))
        result = checker.end(published)
        w = checker.window
        n = len(session.clients)
        result.update(mode="saturation" if rate == 0 else "rate", rate=rate or None, clients=n,
                      duration_s=plan.duration_s,
                      published_per_s=published / max(1e-9, published_at - start),
                      delivered_per_s=(w.delivered / max(1e-9, w.last_at - start)) if w.last_at else 0.0,
                      latency_ms=stats.summarize(w.latencies_ms),
                      cdf=[(round(v, 4), round(f, 5)) for v, f in stats.cdf(w.latencies_ms)],
                      cpu_s=cpu, closed=sum(1 for c in session.clients if not c.open_now),
                      close_codes=sorted({c.close_code for c in session.clients if c.close_code is not None}))
        total = sum(cpu.values())
        result["cpu_total_s"] = total
        result["cpu_us_per_event"] = total / w.delivered * 1e6 if w.delivered else None
        if pub_pid:
            result["publisher_cpu_s"] = max(0.0, procs.tree_cpu_s(pub_pid) - pub0)
        if isinstance(system.publisher, AgentDriver):
            result.update(event_kind=system.publisher.event_kind, unfinished_runs=system.publisher.unfinished,
                          unanswered_starts=system.publisher.unanswered, agent_runs=system.publisher.runs,
                          steps=len(system.publisher.steps))
        log(f"{system.key}: {'saturation' if not rate else f'{rate:,}/s'} x{n:,}: "
            f"delivered {w.delivered:,}/{published:,} at {result['delivered_per_s']:,.0f}/s, "
            f"p50 {result['latency_ms']['p50']:.2f} p99 {result['latency_ms']['p99']:.2f} ms"
            + ("" if result["ok"] else f"  CHECK: lost {result['lost']} dup {result['duplicates']} "
                                       f"reordered {result['reordered']} gaps {result['gaps']}"))
        return result

    async def memory(self, system: System) -> list[dict[str, Any]]:
        """Open idle connections in steps up to each level; RSS growth / connections at each."""
        levels = sorted(self.plan.memory_connections)
        pids = system.rss_pids()
        await asyncio.sleep(1.0)
        base = {name: procs.rss_bytes(pid) for name, pid in pids.items()}
        entries: list[dict[str, Any]] = []
        opened = []
        session = system.new_session(levels[-1])
        await system.prepare(session)
        checker = DeliveryChecker(session.streams)
        protocol = getattr(system, "memory_protocol", system.protocol)(session)
        try:
            for level in levels:
                t0 = time.monotonic()
                batch = session.streams[len(opened):level]
                opened += await open_clients(protocol, batch, checker, first_index=len(opened))
                took = time.monotonic() - t0
                await asyncio.sleep(1.5)
                rss = {name: procs.rss_bytes(pid) for name, pid in pids.items()}
                delta = sum(rss.values()) - sum(base.values())
                entries.append({"connections": level, "rss_base_bytes": sum(base.values()),
                                "rss_bytes": sum(rss.values()), "per_connection_bytes": delta / level,
                                "open_s": took, "measured": " + ".join(pids)})
                log(f"{system.key}: {level:,} idle connections: {delta / level / 1024:.1f} KiB each "
                    f"(opened in {took:.1f}s)")
        finally:
            await close_clients(opened)
        await asyncio.sleep(1.0)
        return entries

    async def agent_single(self, system: System) -> list[dict[str, Any]]:
        """One run alone: a thinking burst inside the throttle, and a long unthrottled run."""
        session = system.new_session(1)
        await system.prepare(session)
        checker = DeliveryChecker(session.streams)
        session.clients = await open_clients(system.protocol(session), session.streams, checker)
        client = session.clients[0]
        entries = []
        try:
            for steps in (BURST_STEPS, UNTHROTTLED_STEPS):
                measured = []
                for _ in range(max(1, self.plan.single_runs)):
                    await system.settle(self.plan.settle_s)
                    checker.begin()
                    run = await client.state.start(client, steps, 60)
                    await asyncio.wait_for(run.completed, 60)
                    await drain(checker, run.event_count, limit_s=5)
                    w = checker.window
                    span = (w.last_at or 0) - (w.first_at or 0)
                    measured.append({"events": w.delivered, "ok": checker.end(run.event_count)["ok"],
                                     "stream_events_per_s": (w.delivered - 1) / span if span > 0 else None,
                                     "end_to_end_events_per_s": w.delivered / (run.completed_at - run.sent_at),
                                     "latency_ms": stats.summarize(w.latencies_ms)})
                best = sorted(measured, key=lambda m: m["end_to_end_events_per_s"])[len(measured) // 2]
                entry = dict(best, script=_script_name(steps), repeats=len(measured),
                             all_end_to_end=[m["end_to_end_events_per_s"] for m in measured])
                rates = [m["stream_events_per_s"] for m in measured if m["stream_events_per_s"]]
                entry["median_stream_events_per_s"] = statistics.median(rates) if rates else None
                entries.append(entry)
                log(f"{system.key}: one run {entry['script']}: {entry['events']} events, "
                    f"{entry['end_to_end_events_per_s']:,.0f}/s start to end")
        finally:
            await close_clients(session.clients)
        return entries


def _script_name(steps: list[dict[str, Any]]) -> str:
    import orjson
    return orjson.dumps(steps).decode()
