"""``agentevents chaos``: conformance-agent runs through HAProxy under a random fault schedule,
then the history checker (``history.py``) over everything the clients received and the archive.

Each session connects as one of ``--users`` users, starts a run, and follows it to its
``agent_completed``; when a fault cuts its connection it reconnects (retrying while the stack
recovers) and resumes from the last seq it holds. Faults come from ``schedule.fault_schedule``:
gateway and worker SIGKILLs, Redis and PostgreSQL restarts, PostgreSQL pauses, and cut client
connections. The run stops starting sessions after ``--duration`` seconds, gives those in
flight a bounded time to end, heals the stack, waits for the archive, and judges. Native stack
only (faults go through its supervisor).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..testing.client import HandshakeRefused, RecordingClient
from ..testing.tokens import TokenFactory
from .history import Received, Session, Verdict, check
from .schedule import Fault, fault_schedule, run_script

RUN_DEADLINE_S = 90.0      # a session whose run has not ended by then is judged as it is
RECONNECT_DEADLINE_S = 45.0
ARCHIVE_DEADLINE_S = 60.0
RECOVERY_DEADLINE_S = 45.0
PROGRESS_EVERY_S = 5.0


class ChaosError(Exception):
    """A usage or setup problem: one line for the user, exit 2."""


@dataclass
class Options:
    runs: int = 200
    duration_s: float = 60.0
    faults: int = 10
    concurrency: int = 12
    users: int = 8
    seed: int = 1
    report: Path | None = None


@dataclass
class State:
    options: Options
    started: float = field(default_factory=time.monotonic)
    begun: int = 0
    finished: list[Session] = field(default_factory=list)
    unconfirmed: int = 0           # a start whose answer a fault swallowed: not an accepted run
    never_accepted: int = 0        # sessions whose run no gateway accepted within RUN_DEADLINE_S
    reconnects: int = 0
    refused: Counter[str] = field(default_factory=Counter)  # transient refusals while recovering
    faults: list[tuple[Fault, float]] = field(default_factory=list)  # fault, seconds to recover
    live: dict[int, RecordingClient] = field(default_factory=dict)
    stop_starting: bool = False

    def elapsed(self) -> float:
        return time.monotonic() - self.started


class Chaos:
    def __init__(self, options: Options, *, url: str, secret: str, control: Any, health: Any) -> None:
        self.o = options
        self.url = url
        self.tokens = TokenFactory(secret=secret)
        self.control = control
        self.health = health  # () -> dict[component, bool], blocking
        self.state = State(options)
        self.rng = random.Random(options.seed)
        self.users = [TokenFactory.fresh_user(f"chaos{i}") for i in range(options.users)]

    # -- sessions -------------------------------------------------------------------------------
    async def _connect(self, user: str, name: str) -> RecordingClient:
        deadline = time.monotonic() + RECONNECT_DEADLINE_S
        while True:
            client = RecordingClient(self.url, self.tokens.token(user, permissions=["agents:script"]), name=name,
                                     compression=None)
            try:
                await client.connect(timeout_s=5)
                return client
            except (OSError, HandshakeRefused, AssertionError, TimeoutError) as exc:
                self.state.refused[type(exc).__name__] += 1
                await client.close()
                if time.monotonic() > deadline:
                    raise ChaosError(f"could not connect as {user} within {RECONNECT_DEADLINE_S:g}s: {exc}") from None
                await asyncio.sleep(0.2)  # the stack is recovering from a fault: retry with a pause

    async def _start(self, index: int, user: str, clients: list[RecordingClient]) -> tuple[str, str] | None:
        """run_accepted's (run id, thread id); None when no start could be confirmed in time."""
        deadline = time.monotonic() + RUN_DEADLINE_S
        options = run_script(random.Random(self.o.seed * 100_003 + index), index)
        while time.monotonic() < deadline:
            client = clients[-1]
            try:
                answer = await client.start_agent("scripted", f"chaos run {index}", options=options, timeout_s=10)
            except AssertionError:  # the connection went down before the answer
                self.state.unconfirmed += 1
                clients.append(await self._reconnect(user, index, clients))
                continue
            if answer.type == "run_accepted":
                return answer.data["run_id"], answer.data["thread_id"]
            self.state.refused[str(answer.data.get("code"))] += 1
            await asyncio.sleep(max(0.05, answer.data.get("retry_after_ms", 200) / 1000))  # as the server advises
        return None

    async def _reconnect(self, user: str, index: int, clients: list[RecordingClient]) -> RecordingClient:
        self.state.reconnects += 1
        client = await self._connect(user, f"s{index}-c{len(clients)}")
        self.state.live[index] = client
        return client

    async def _follow(self, index: int, user: str, run_id: str, thread_id: str,
                      clients: list[RecordingClient]) -> None:
        deadline = time.monotonic() + RUN_DEADLINE_S
        while time.monotonic() < deadline:
            client = clients[-1]
            try:
                await client.wait_run_end(run_id, max(0.1, deadline - time.monotonic()))
                return
            except AssertionError:
                if client.connected:
                    return  # the deadline passed with the connection up: judged as it is
            clients.append(await self._reconnect(user, index, clients))
            last = max(c.last_seq(thread_id) for c in clients)
            while time.monotonic() < deadline:
                try:
                    answer = await clients[-1].request({"type": "resume", "threads": {thread_id: last}}, 10)
                except AssertionError:
                    clients.append(await self._reconnect(user, index, clients))
                    continue
                if answer.type == "resumed":
                    break
                self.state.refused[str(answer.data.get("code"))] += 1
                await asyncio.sleep(max(0.05, answer.data.get("retry_after_ms", 200) / 1000))

    async def _session(self, index: int) -> None:
        user = self.users[index % len(self.users)]
        clients = [await self._connect(user, f"s{index}-c0")]
        self.state.live[index] = clients[0]
        try:
            started = await self._start(index, user, clients)
            if started is None:
                self.state.never_accepted += 1
                return
            run_id, thread_id = started
            await self._follow(index, user, run_id, thread_id, clients)
            session = Session(user, run_id, thread_id)
            for client in clients:
                session.connections[client.name] = [Received.of(client.name, f.raw, f.data) for f in client.events()]
            self.state.finished.append(session)
        finally:
            self.state.live.pop(index, None)
            await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)

    async def _sessions(self) -> None:
        # Starts are spread over 90 % of the duration, so that the faults fall among runs.
        spacing = self.o.duration_s * 0.9 / max(self.o.runs, 1)

        async def lane() -> None:
            while not self.state.stop_starting and self.state.begun < self.o.runs:
                index = self.state.begun
                self.state.begun += 1
                due = index * spacing - self.state.elapsed()
                if due > 0:
                    await asyncio.sleep(due)  # the pace of the schedule, not a wait for a condition
                await self._session(index)

        await asyncio.gather(*(lane() for _ in range(self.o.concurrency)))

    # -- faults ---------------------------------------------------------------------------------
    async def _faults(self) -> None:
        for fault in fault_schedule(self.o.seed, self.o.faults, self.o.duration_s * 0.85):
            wait = fault.at_s - self.state.elapsed()
            if wait > 0:
                await asyncio.sleep(wait)  # the schedule's moment, not a wait for a condition
            if self.state.stop_starting:
                return
            began = time.monotonic()
            await self._inject(fault)
            await self._recovered()
            self.state.faults.append((fault, time.monotonic() - began))

    async def _inject(self, fault: Fault) -> None:
        if fault.kind == "drop_clients":
            live = list(self.state.live.values())
            for client in self.rng.sample(live, k=min(len(live), max(1, len(live) // 3))):
                await client.drop()
            return
        if fault.kind.startswith("pause"):
            await self.control.fault("pause", fault.component)
            await asyncio.sleep(fault.hold_s)  # the length of the outage is the fault itself
            await self.control.fault("resume", fault.component)
            return
        action = "kill" if fault.kind.startswith("kill") else "restart"
        await self.control.fault(action, fault.component)

    async def _recovered(self) -> None:
        deadline = time.monotonic() + RECOVERY_DEADLINE_S
        while True:
            report = await asyncio.to_thread(self.health)
            if all(report.values()):
                return
            if time.monotonic() > deadline:
                down = ", ".join(name for name, ok in report.items() if not ok)
                raise ChaosError(f"the stack did not recover within {RECOVERY_DEADLINE_S:g}s: {down} down")
            await asyncio.sleep(0.2)

    # -- progress, archive, verdict -------------------------------------------------------------
    def progress(self) -> str:
        s = self.state
        verdict = check(s.finished)
        return (f"chaos: {len(s.finished)}/{self.o.runs} runs done ({len(s.live)} in flight), "
                f"{len(s.faults)}/{self.o.faults} faults, {verdict.events} events, {s.reconnects} reconnects, "
                f"{verdict.violations} violations so far, {s.elapsed():.0f} s")

    async def _progress(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_EVERY_S)  # a progress line's period
            print(self.progress(), flush=True)

    async def _archive(self) -> dict[str, dict[int, str]]:
        """Each thread's archived seq → text, once it covers what was received (or the deadline)."""
        deadline = time.monotonic() + ARCHIVE_DEADLINE_S
        out: dict[str, dict[int, str]] = {}
        for session in self.state.finished:
            wanted = {e.seq for evs in session.connections.values() for e in evs if e.thread_id == session.thread_id}
            while True:
                try:
                    rows = await self.control.archived_events(session.thread_id)
                    out[session.thread_id] = {r["seq"]: r["payload"] for r in rows}
                except Exception:  # the archive is still recovering; keep asking until the deadline
                    out.setdefault(session.thread_id, {})
                if wanted <= set(out[session.thread_id]) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.3)
        return out

    async def run(self) -> tuple[Verdict, dict[str, Any]]:
        progress = asyncio.create_task(self._progress())
        faults = asyncio.create_task(self._faults())
        sessions = asyncio.create_task(self._sessions())
        try:
            await asyncio.wait({sessions}, timeout=self.o.duration_s)
            self.state.stop_starting = True
            await asyncio.wait({sessions}, timeout=RUN_DEADLINE_S + RECONNECT_DEADLINE_S)
            if not sessions.done():
                sessions.cancel()
            faults.cancel()
            for task in (faults, sessions):
                failure = (await asyncio.gather(task, return_exceptions=True))[0]
                if isinstance(failure, Exception):
                    raise failure
        finally:
            progress.cancel()
            await self.control.heal()
        archive = await self._archive()
        verdict = check(self.state.finished, archive)
        return verdict, self.summary(verdict)

    def summary(self, verdict: Verdict) -> dict[str, Any]:
        s = self.state
        kinds = Counter(f.kind for f, _ in s.faults)
        statuses = Counter()
        for session in s.finished:
            end = next((e for evs in session.connections.values() for e in evs
                        if e.type == "agent_completed" and e.run_id == session.run_id), None)
            statuses[orjson.loads(end.raw)["data"]["status"] if end else "no completion"] += 1
        return {"options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(self.o).items()},
                "duration_s": round(s.elapsed(), 1), "runs_started": s.begun, "runs_judged": len(s.finished),
                "unconfirmed_starts": s.unconfirmed, "never_accepted": s.never_accepted,
                "unjudged": s.begun - len(s.finished) - s.never_accepted, "reconnects": s.reconnects,
                "refusals": dict(s.refused),
                "run_statuses": dict(statuses), "faults": dict(kinds),
                "fault_log": [{"fault": f.describe(), "recovered_in_s": round(t, 2)} for f, t in s.faults],
                "verdict": verdict.as_dict()}


def render(summary: dict[str, Any]) -> str:
    v = summary["verdict"]
    lines = [f"chaos: {summary['runs_judged']} runs judged ({summary['runs_started']} started, "
             f"{summary['unconfirmed_starts']} starts unconfirmed after a fault), {v['events']} events, "
             f"{sum(summary['faults'].values())} faults in {summary['duration_s']} s",
             "  faults: " + (", ".join(f"{k} {n}" for k, n in sorted(summary["faults"].items())) or "none"),
             "  runs: " + ", ".join(f"{k} {n}" for k, n in sorted(summary["run_statuses"].items())),
             "  " + ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in v["counts"].items())]
    for category, examples in v["examples"].items():
        lines += [f"  VIOLATION {category}: {example}" for example in examples]
    for what in ("never_accepted", "unjudged"):
        if summary[what]:
            lines.append(f"  FAILURE: {summary[what]} sessions {what.replace('_', ' ')}")
    lines.append(f"chaos: {v['violations']} violations")
    return "\n".join(lines)


def main(options: Options) -> int:
    from ..stack import native
    from ..testing.control import NativeControl
    secret = native.read_secret()
    report = native.health()
    if not secret or not all(report.values()):
        down = ", ".join(n for n, ok in report.items() if not ok) or "no JWT secret"
        raise ChaosError(f"the native stack is not up ({down}); start it with: agentevents stack up")
    chaos = Chaos(options, url=f"ws://127.0.0.1:{native.LB_PORT}/ws", secret=secret, control=NativeControl(),
                  health=native.health)
    print(f"chaos: {options.runs} runs, {options.faults} faults over {options.duration_s:g} s, "
          f"{options.concurrency} at a time, seed {options.seed}", flush=True)
    verdict, summary = asyncio.run(chaos.run())
    print(render(summary), flush=True)
    if options.report:
        options.report.parent.mkdir(parents=True, exist_ok=True)
        options.report.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    return 1 if verdict.violations or summary["never_accepted"] or summary["unjudged"] else 0
