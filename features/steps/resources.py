"""Steps about what the gateways hold for people (T019, T030, T111): open connections, followed
conversations, file descriptors and memory, at rest, under load and after everyone has left.

@process_stats: these read the gateways through the target's control (``Control.gateway_stats``;
``agentevents.testing.gateways`` waits on them). Every return to a baseline is a poll with a
deadline; the figures show the baseline, the peak and the end.
"""

from __future__ import annotations

import asyncio
import time

from behave import given, then, when
from hamcrest import assert_that, equal_to

from agentevents.testing import gateways
from agentevents.testing.client import describe
from agentevents.testing.control import GatewayStats
from agentevents.testing.crowds import CROWD_RUN_TIMEOUT_S, connect_many, crowd, crowd_finished
from agentevents.testing.figures import record_figure
from agentevents.testing.limits import (
    CROWD_MEMORY_MARGIN_MB,
    CROWD_MIN_EVENTS,
    FD_SLACK,
    SETTLE_S,
    STREAM_GROWTH_LIMIT_MB,
)
from agentevents.testing.matchers import follows_lifecycle, gapless_seqs
from agentevents.testing.measures import human
from agentevents.testing.parse_types import register_all
from agentevents.testing.scripts import complete, script_for, steps

register_all()



def _per_gateway(states: dict[str, GatewayStats], what: str) -> str:
    return ", ".join(f"{name} {getattr(state, what)}" for name, state in states.items())


# -- at rest ------------------------------------------------------------------------------------

async def _warm_up(world) -> None:
    """A small crowd run first, so one-off allocations (imports, pools) are not counted as growth."""
    names = [f"Warmup{i:02d}" for i in range(1, 21)]
    for name in names:
        world.person(name, permissions=["agents:script"])
    clients = await connect_many(world, [(name, {}) for name in names])
    options = steps({"repeat": 10, "step": {"tool": "echo", "params": {"value": "w" * 500}}}, complete(result=1))
    runs = await asyncio.gather(*(world.start(name, "scripted", "warm up", options=options) for name in names))
    await asyncio.gather(*(r.client.wait_run_end(r.run_id, CROWD_RUN_TIMEOUT_S) for r in runs))
    await asyncio.gather(*(c.close() for c in clients))


@given("the gateways are at rest")
async def step_at_rest(context):
    await _warm_up(context.world)
    base = await gateways.settled(context.world.target.control, lambda s: all(g.connections == 0 for g in s.values()),
                                  SETTLE_S, "the warm-up connections did not close")
    context.world.notes["gateway_baseline"] = base
    record_figure(context, "gateways at rest: " + "; ".join(
        f"{n} {s.connections} connections, {s.open_fds} file descriptors, {s.rss_mb:.1f} MB" for n, s in base.items()))


# -- visitors who come and go (T019) ------------------------------------------------------------

@when("{n:d} visitors connect and then leave")
async def step_visitors(context, n):
    world = context.world
    baseline = world.notes["gateway_baseline"]
    clients = await connect_many(world, [(f"Visitor{i % 20:02d}", {}) for i in range(n)])
    peak = await world.target.control.gateway_stats()
    world.notes["gateway_peak"] = peak
    opened = sum(s.connections for s in peak.values()) - sum(s.connections for s in baseline.values())
    assert opened >= n, f"the gateways report {opened} more connections, not {n}: {peak} vs {baseline}"
    await asyncio.gather(*(c.close() for c in clients))
    for client in clients:
        assert not client.connected, f"{client.name} is still open"


async def _back_to_baseline(context, what: str, label: str, slack: int) -> None:
    world = context.world
    baseline, peak = world.notes["gateway_baseline"], world.notes.get("gateway_peak", {})

    def back(now: dict[str, GatewayStats]) -> bool:
        return all(getattr(now[g], what) <= getattr(baseline[g], what) + slack for g in baseline)

    try:
        now = await gateways.settled(world.target.control, back, SETTLE_S,
                                     f"the gateways' {label} did not return to their baseline")
    finally:
        now = await world.target.control.gateway_stats()
        record_figure(context, f"{label} per gateway: at rest {_per_gateway(baseline, what)}; with the visitors "
                               f"{_per_gateway(peak, what)}; after they left {_per_gateway(now, what)}"
                               + (f" — allowed +{slack}" if slack else " — allowed +0"))


@then("the gateways count none of the visitors as connected any more")
async def step_connections_back(context):
    await _back_to_baseline(context, "connections", "open connections", slack=0)


@then("the gateways hold nothing the visitors used")
async def step_fds_back(context):
    await _back_to_baseline(context, "open_fds", "file descriptors", slack=FD_SLACK)


# -- a gateway streaming thoughts (T030) --------------------------------------------------------

@given("{people:d} people are connected to the same gateway")
async def step_people_on_one_gateway(context, people):
    world = context.world
    gateway = (await world.target.control.gateways())[0]
    before = (await world.target.control.gateway_stats(gateway))[gateway]
    world.notes["memory"] = (gateway, before.rss_mb)
    url = before.ws_url
    names = [f"Reader{i:02d}" for i in range(people)]
    for name in names:
        world.person(name, tier="enterprise")
    await connect_many(world, [(n, {"url": url}) for n in names])
    world.notes["readers"] = names


@when("they receive {total:d} thoughts between them and then leave")
async def step_stream_thoughts(context, total):
    world = context.world
    gateway, _before = world.notes["memory"]
    names = world.notes["readers"]
    burst = 50  # a run's burst passes the throttle untouched: every thought is delivered
    runs_each, rest = divmod(total, len(names) * burst)
    assert rest == 0 and runs_each >= 1, f"{total} thoughts do not split into bursts of {burst} for {len(names)}"
    behaviour = f"thinks {burst} times in a quick burst"
    started = time.monotonic()
    for _ in range(runs_each):
        await asyncio.gather(*(world.start(n, "scripted", behaviour, options=script_for(behaviour)) for n in names))
    for name in names:
        for run in world.runs_of(name):
            await run.client.wait_run_end(run.run_id, 120)
    received = sum(len(world.person(n).client.events(types=("agent_thinking",))) for n in names)
    record_figure(context, f"{received:,} thoughts delivered to {len(names)} people through {gateway} in "
                           f"{human(time.monotonic() - started)}")
    assert_that(received, equal_to(total))
    await asyncio.gather(*(world.person(n).client.close() for n in names))
    world.notes["memory_thoughts"] = received


@then("the gateway has kept no memory for what it delivered")
async def step_memory_kept(context):
    gateway, before = context.world.notes["memory"]
    after = (await context.world.target.control.gateway_stats(gateway))[gateway].rss_mb
    grown = after - before
    thoughts = context.world.notes.get("memory_thoughts", 0)
    record_figure(context, f"gateway memory {grown:+.1f} MB after {thoughts:,} thoughts ({before:.1f} MB before, "
                           f"{after:.1f} MB after) — limit {STREAM_GROWTH_LIMIT_MB} MB")
    assert grown < STREAM_GROWTH_LIMIT_MB, \
        f"{gateway} grew by {grown:.1f} MB; the limit is {STREAM_GROWTH_LIMIT_MB} MB"


# -- a crowd that comes, works and leaves (T111) ------------------------------------------------

@when("everyone in the crowd leaves once their run has finished")
async def step_crowd_leaves(context):
    world = context.world
    await crowd_finished(world)
    world.notes["gateway_peak"] = await world.target.control.gateway_stats()
    await asyncio.gather(*(c.close() for n in crowd(world) for c in world.person(n).clients))


@then("everyone in the crowd received their whole run")
async def step_crowd_whole_runs(context):
    world = context.world
    total = 0
    for name in crowd(world):
        run = world.last_run(name)
        events = run.client.events(run_id=run.run_id)
        assert_that(events, follows_lifecycle())
        assert_that(events, gapless_seqs(start=1))
        assert_that(len(events), equal_to(events[-1].data["data"]["event_count"]), describe(events))
        total += len(events)
    kb = sum(len(f.raw) for n in crowd(world) for f in world.events_of(n)) / 1000
    record_figure(context, f"{total:,} events ({kb:,.0f} KB) delivered to {len(crowd(world))} users, every run whole")
    assert total > CROWD_MIN_EVENTS, f"the crowd received {total} events; the check needs over {CROWD_MIN_EVENTS}"


@then("the gateways give back the memory and the connections the crowd used")
async def step_gateways_give_back(context):
    control = context.world.target.control
    base = context.world.notes["gateway_baseline"]
    peak = context.world.notes.get("gateway_peak", {})

    def back(now: dict[str, GatewayStats]) -> bool:
        return all(s.connections == base[n].connections and s.threads == base[n].threads
                   and s.rss_mb <= base[n].rss_mb + CROWD_MEMORY_MARGIN_MB for n, s in now.items())

    try:
        after = await gateways.settled(control, back, 20, "the gateways did not return to their baseline")
    finally:
        now = await control.gateway_stats()
        for n in base:
            at_peak = f"{peak[n].rss_mb:.1f} MB" if n in peak else "not measured"
            record_figure(context, f"{n} memory {now[n].rss_mb - base[n].rss_mb:+.1f} MB after the crowd left "
                                   f"({base[n].rss_mb:.1f} MB at rest, {at_peak} at the peak) — limit "
                                   f"+{CROWD_MEMORY_MARGIN_MB} MB; {now[n].connections} connections and "
                                   f"{now[n].threads} followed conversations left")
    for name, state in after.items():
        assert state.rss_mb - base[name].rss_mb <= CROWD_MEMORY_MARGIN_MB
