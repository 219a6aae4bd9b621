"""Steps about many people at once (T101, T103, T111) and one long rapid run (T102).

A crowd is a list of generated people (``User001`` ...) kept in ``world.notes["crowd"]``; they
connect and start their agents together with ``asyncio.gather``, and every check is made per
person, so one leaked, lost or reordered event names the person it happened to.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import urllib.request
from pathlib import Path

import orjson
from behave import given, then, when
from hamcrest import assert_that, equal_to, greater_than_or_equal_to, less_than_or_equal_to

from agentevents.testing.client import describe
from agentevents.testing.matchers import (
    event_types_exactly,
    follows_lifecycle,
    gapless_seqs,
    has_envelope,
    only_events_of,
    timestamp,
)
from agentevents.testing.parse_types import register_all
from agentevents.testing.scripts import complete, register, script_for, steps

register_all()

CROWD_RUN_TIMEOUT_S = 45
GRACE_S = 0.3
MATH_QUESTION = "What is 12*(3+4)?"
MATH_EVENTS = ("agent_started", "agent_thinking", "agent_thinking", "tool_executing", "tool_completed",
               "agent_completed")
# The three agents each member of a crowd runs at once (T103), with a question each can answer.
THREE_AGENTS = {"math": MATH_QUESTION, "triage": "Which agent should answer my question?",
                "research": "How tall is Olympus Mons on Mars?"}


# -- scripted behaviours ----------------------------------------------------------------------

def mixed_steps(total: int) -> list[dict]:
    """Steps whose run emits exactly ``total`` events (agent_started and agent_completed
    included), mixing thoughts, tool calls and recoverable errors, with no pause anywhere."""
    cycle = [({"think": "thinking"}, 1), ({"tool": "echo", "params": {"value": "mixed"}}, 2),
             ({"error": {"code": "mixed_error", "message": "a recoverable hiccup"}}, 1),
             ({"tool": "calculator", "params": {"expression": "6*7"}}, 2)]
    out: list[dict] = []
    left = total - 2
    i = 0
    while left > 0:
        step, cost = cycle[i % len(cycle)]
        if cost > left:
            step, cost = cycle[0]
        step = dict(step)
        if "think" in step:
            step["think"] = f"thought {len(out) + 1}"
        out.append(step)
        left -= cost
        i += 1
    return out


def emitted_types(script: list[dict]) -> list[str]:
    """The event types a run of ``mixed_steps`` emits, in order."""
    types = ["agent_started"]
    for step in script:
        if "think" in step:
            types.append("agent_thinking")
        elif "tool" in step:
            types += ["tool_executing", "tool_completed"]
        elif "error" in step:
            types.append("agent_error")
    return types + ["agent_completed"]


register("emits {count:d} mixed events as fast as it can",
         lambda count: steps(*mixed_steps(count), complete(result="mixed", summary="Mixed events.")))
register("calls a tool {calls:d} times with a {size:d}-character value",
         lambda calls, size: steps({"repeat": calls, "step": {"tool": "echo", "params": {"value": "m" * size}}},
                                   complete(result="done", summary="Many tool calls.")))


# -- helpers ----------------------------------------------------------------------------------

def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, int(round(pct / 100 * len(ordered) + 0.5)) - 1))
    return ordered[index]


def figures(values_s: list[float]) -> str:
    ms = [v * 1000 for v in values_s]
    return (f"n={len(ms)} p50={statistics.median(ms):.0f} ms p95={percentile(ms, 95):.0f} ms "
            f"max={max(ms):.0f} ms")


def crowd(context) -> list[str]:
    names = context.world.notes.get("crowd")
    if not names:
        raise AssertionError("no crowd is connected in this scenario")
    return names


async def connect_crowd(context, count: int, permissions: list[str]) -> None:
    world = context.world
    names = [f"User{i:03d}" for i in range(1, count + 1)]
    for name in names:
        world.person(name, permissions=list(permissions))
    started = time.monotonic()
    await asyncio.gather(*(world.connect(name) for name in names))
    print(f"measured: {count} connections opened in {(time.monotonic() - started) * 1000:.0f} ms")
    world.notes["crowd"] = names


async def crowd_finished(context) -> None:
    """Every run of the crowd has its agent_completed (or the error lists what was received)."""
    world = context.world
    runs = [r for name in crowd(context) for r in world.runs_of(name)]
    await asyncio.gather(*(r.client.wait_run_end(r.run_id, CROWD_RUN_TIMEOUT_S) for r in runs))


async def crowd_quiet(context) -> None:
    """The defined end for "nothing else arrives": every run ended, then a ping answered on every
    connection of the crowd, then a short grace."""
    await crowd_finished(context)
    world = context.world
    await asyncio.gather(*(c.request({"type": "ping"}, timeout_s=10)
                           for name in crowd(context) for c in world.person(name).clients))
    await world.settle(GRACE_S)


def completion_times(context) -> list[float]:
    world = context.world
    out = []
    for name in crowd(context):
        for run in world.runs_of(name):
            end = next(f for f in run.client.events(run_id=run.run_id) if f.type == "agent_completed")
            out.append(end.at - run.sent_at)
    return out


# -- crowds -----------------------------------------------------------------------------------

@given("a crowd of {count:d} users who may run scripted agents is connected")
async def step_scripted_crowd(context, count):
    await connect_crowd(context, count, ["agents:script"])


@given("a crowd of {count:d} users is connected")
async def step_crowd(context, count):
    await connect_crowd(context, count, [])


@when('everyone in the crowd asks the math agent "{message}" at the same moment')
async def step_crowd_math(context, message):
    world = context.world
    await asyncio.gather(*(world.start(name, "math", message) for name in crowd(context)))


@when("everyone in the crowd starts the math, triage and research agents at the same moment")
async def step_crowd_three(context):
    world = context.world
    await asyncio.gather(*(world.start(name, agent, message)
                           for name in crowd(context) for agent, message in THREE_AGENTS.items()))


@when("everyone in the crowd starts an agent that {behaviour}")
async def step_crowd_scripted(context, behaviour):
    world = context.world
    options = script_for(behaviour)
    await asyncio.gather(*(world.start(name, "scripted", behaviour, options=options) for name in crowd(context)))


@then("everyone in the crowd receives exactly their own six events, in order")
async def step_crowd_six(context):
    await crowd_quiet(context)
    world = context.world
    for name in crowd(context):
        person = world.person(name)
        run = world.last_run(name)
        mine = run.client.events()
        assert_that(mine, only_events_of(person.user_id, {run.thread_id}))
        assert_that(run.client.events(run_id=run.run_id), event_types_exactly(*MATH_EVENTS))
        assert_that(mine, gapless_seqs(start=1))
        assert_that(mine, has_envelope(user_id=person.user_id, thread_id=run.thread_id))


@then("everyone in the crowd receives only their own three conversations, each complete")
async def step_crowd_three_threads(context):
    await crowd_quiet(context)
    world = context.world
    for name in crowd(context):
        person = world.person(name)
        runs = world.runs_of(name)
        threads = {r.thread_id for r in runs}
        assert_that(len(threads), equal_to(len(THREE_AGENTS)))
        received = world.events_of(name)
        assert_that(received, only_events_of(person.user_id, threads))
        for run in runs:
            events = run.client.events(thread_id=run.thread_id)
            assert_that(events, follows_lifecycle())
            assert_that(events, gapless_seqs(start=1))
            started = events[0].data["data"].get("agent_type")
            assert started == run.agent, f"{name}'s {run.agent} thread started a {started!r} agent\n" \
                                         f"{describe(events)}"


@then("every whole run in the crowd arrives within {limit:Duration}")
async def step_crowd_sla(context, limit):
    await crowd_finished(context)
    times = completion_times(context)
    print(f"measured: request to agent_completed {figures(times)} (limit {limit * 1000:.0f} ms)")
    slow = [t for t in times if t > limit]
    assert not slow, f"{len(slow)} of {len(times)} runs took longer than {limit * 1000:.0f} ms " \
                     f"(slowest {max(slow) * 1000:.0f} ms)"


@then("the time from request to the end of each run in the crowd is reported")
async def step_crowd_figures(context):
    await crowd_finished(context)
    times = completion_times(context)
    print(f"measured: request to agent_completed {figures(times)}")
    assert_that(len(times), equal_to(sum(len(context.world.runs_of(n)) for n in crowd(context))))


# -- one rapid run (T102) ---------------------------------------------------------------------

async def finished_run(context, name):
    run, _end, events = await context.world.finished(name, timeout_s=CROWD_RUN_TIMEOUT_S)
    return run, events


@then("{name:Person} receives all {count:d} events in the order her agent emitted them")
@then("{name:Person} receives all {count:d} events in the order his agent emitted them")
async def step_emission_order(context, name, count):
    _run, events = await finished_run(context, name)
    assert_that(events, event_types_exactly(*emitted_types(mixed_steps(count))))
    thoughts = [f.data["data"]["reasoning"] for f in events if f.type == "agent_thinking"]
    expected = [s["think"] for s in mixed_steps(count) if "think" in s]
    assert thoughts == expected, f"thoughts arrived as {thoughts[:10]}..., emitted as {expected[:10]}...\n" \
                                 f"{describe(events)}"


@then("the timestamps of {name:Person}'s events never go backwards")
async def step_ts_forward(context, name):
    _run, events = await finished_run(context, name)
    stamps = [timestamp(f) for f in events]
    back = [i for i in range(1, len(stamps)) if stamps[i] < stamps[i - 1]]
    assert not back, f"event #{events[back[0]].index} is stamped {stamps[back[0]]}, before " \
                     f"{stamps[back[0] - 1]}\n{describe(events)}"
    span = (stamps[-1] - stamps[0]).total_seconds()
    print(f"measured: {len(events)} events emitted over {span * 1000:.0f} ms")


# -- gateway memory (T111) --------------------------------------------------------------------

def _gateways() -> dict[str, int]:
    from agentevents.stack import native
    return dict(native.GATEWAYS)


def _rss_mb(component: str) -> float:
    from agentevents.stack import native
    pid = native.component_pid(component)
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {component} (pid {pid})")


def _gateway_health(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
        return orjson.loads(resp.read())


def gateway_state() -> dict[str, dict]:
    return {name: {"rss_mb": _rss_mb(name), **_gateway_health(port)} for name, port in _gateways().items()}


async def warm_up(context) -> None:
    """A small crowd run first, so one-off allocations (imports, pools) are not counted as growth."""
    world = context.world
    names = [f"Warmup{i:02d}" for i in range(1, 21)]
    for name in names:
        world.person(name, permissions=["agents:script"])
    clients = await asyncio.gather(*(world.connect(name) for name in names))
    options = steps({"repeat": 10, "step": {"tool": "echo", "params": {"value": "w" * 500}}}, complete(result=1))
    runs = await asyncio.gather(*(world.start(name, "scripted", "warm up", options=options) for name in names))
    await asyncio.gather(*(r.client.wait_run_end(r.run_id, CROWD_RUN_TIMEOUT_S) for r in runs))
    await asyncio.gather(*(c.close() for c in clients))


async def wait_gateways(predicate, timeout_s: float, what: str) -> dict[str, dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        state = await asyncio.to_thread(gateway_state)
        if predicate(state):
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout_s:g}s; gateways now: {state}")
        await asyncio.sleep(0.25)


@given("the gateways' memory use is measured at rest after a warm-up")
async def step_baseline(context):
    await warm_up(context)
    base = await wait_gateways(lambda s: all(g["connections"] == 0 for g in s.values()), 15,
                               "the warm-up connections did not close")
    context.world.notes["gateway_baseline"] = base
    print("measured: baseline " + ", ".join(f"{n} rss={s['rss_mb']:.1f} MB threads={s['threads']}"
                                           for n, s in base.items()))


@when("everyone in the crowd disconnects once their run has finished")
async def step_crowd_leaves(context):
    await crowd_finished(context)
    world = context.world
    world.notes["crowd_events"] = sum(len(world.events_of(n)) for n in crowd(context))
    world.notes["gateway_peak"] = await asyncio.to_thread(gateway_state)
    await asyncio.gather(*(c.close() for n in crowd(context) for c in world.person(n).clients))


@then("the crowd received more than {count:d} events in all")
async def step_crowd_events(context, count):
    total = context.world.notes.get("crowd_events")
    assert total is not None, "the crowd has not been counted: did every one of them disconnect?"
    print(f"measured: {total} events delivered to the crowd")
    assert_that(total, greater_than_or_equal_to(count + 1))


@then("each gateway's memory returns to within {margin:d} MB of its baseline, with no connection left")
async def step_rss_back(context, margin):
    base = context.world.notes["gateway_baseline"]
    peak = context.world.notes.get("gateway_peak", {})

    def back(state: dict[str, dict]) -> bool:
        return all(s["connections"] == base[n]["connections"] and s["threads"] == base[n]["threads"]
                   and s["rss_mb"] <= base[n]["rss_mb"] + margin for n, s in state.items())

    try:
        after = await wait_gateways(back, 20, "the gateways did not return to their baseline")
    finally:
        now = await asyncio.to_thread(gateway_state)
        print("measured: " + "; ".join(
            f"{n} rss baseline={base[n]['rss_mb']:.1f} MB peak={peak.get(n, {}).get('rss_mb', 0):.1f} MB "
            f"after={now[n]['rss_mb']:.1f} MB connections={now[n]['connections']} threads={now[n]['threads']}"
            for n in base))
    for name, state in after.items():
        assert_that(state["rss_mb"] - base[name]["rss_mb"], less_than_or_equal_to(margin))
