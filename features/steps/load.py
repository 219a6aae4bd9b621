"""Steps about many people at once (T101, T103, T111) and one long rapid run (T102).

A crowd (``agentevents.testing.crowds``) is a list of generated people who connect and start
their agents together with ``asyncio.gather``; every check is made per person, so one leaked,
lost or reordered event names the person it happened to.
"""

from __future__ import annotations

import asyncio

from behave import given, then, when
from hamcrest import assert_that, equal_to

from agentevents.testing.client import describe
from agentevents.testing.crowds import (
    CROWD_RUN_TIMEOUT_S,
    completion_times,
    connect_crowd,
    crowd,
    crowd_finished,
    crowd_quiet,
)
from agentevents.testing.figures import record_figure
from agentevents.testing.matchers import (
    event_types_exactly,
    follows_lifecycle,
    gapless_seqs,
    has_envelope,
    only_events_of,
    timestamp,
)
from agentevents.testing.measures import human, spread
from agentevents.testing.parse_types import register_all
from agentevents.testing.scripts import complete, register, script_for, steps

register_all()

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


# -- crowds -----------------------------------------------------------------------------------

@given("a crowd of {count:d} users is connected")
async def step_crowd(context, count):
    took = await connect_crowd(context.world, count)
    record_figure(context, f"{count} users connected in {human(took)}")


@when('everyone in the crowd asks the math agent "{message}" at the same moment')
async def step_crowd_math(context, message):
    world = context.world
    await asyncio.gather(*(world.start(name, "math", message) for name in crowd(world)))


@when("everyone in the crowd starts the math, triage and research agents at the same moment")
async def step_crowd_three(context):
    world = context.world
    await asyncio.gather(*(world.start(name, agent, message)
                           for name in crowd(world) for agent, message in THREE_AGENTS.items()))


@when("everyone in the crowd starts an agent that {behaviour}")
async def step_crowd_scripted(context, behaviour):
    world = context.world
    options = script_for(behaviour)
    await asyncio.gather(*(world.start(name, "scripted", behaviour, options=options) for name in crowd(world)))


@then("everyone in the crowd receives exactly their own six events, in order")
async def step_crowd_six(context):
    world = context.world
    await crowd_quiet(world)
    for name in crowd(world):
        person = world.person(name)
        run = world.last_run(name)
        mine = run.client.events()
        assert_that(mine, only_events_of(person.user_id, {run.thread_id}))
        assert_that(run.client.events(run_id=run.run_id), event_types_exactly(*MATH_EVENTS))
        assert_that(mine, gapless_seqs(start=1))
        assert_that(mine, has_envelope(user_id=person.user_id, thread_id=run.thread_id))


@then("everyone in the crowd receives only their own three conversations, each complete")
async def step_crowd_three_threads(context):
    world = context.world
    await crowd_quiet(world)
    for name in crowd(world):
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
    world = context.world
    await crowd_finished(world)
    times = completion_times(world)
    record_figure(context, f"whole run, request to answer: {spread(times)} over {len(times)} users "
                           f"— limit {human(limit)}")
    slow = [t for t in times if t > limit]
    assert not slow, f"{len(slow)} of {len(times)} runs took longer than {human(limit)} " \
                     f"(slowest {human(max(slow))})"


@then("the time from request to the end of each run in the crowd is reported")
async def step_crowd_figures(context):
    world = context.world
    await crowd_finished(world)
    times = completion_times(world)
    users = len(crowd(world))
    record_figure(context, f"whole run, request to answer: {spread(times)} over {len(times)} runs of {users} users")
    assert_that(len(times), equal_to(sum(len(world.runs_of(n)) for n in crowd(world))))


# -- one rapid run (T102) ---------------------------------------------------------------------

async def finished_run(context, name):
    run, _end, events = await context.world.finished(name, timeout_s=CROWD_RUN_TIMEOUT_S)
    return run, events


@then("{name:Person} receives all {count:d} events in the order {her:Possessive} agent emitted them")
async def step_emission_order(context, name, count, her):
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
    record_figure(context, f"{len(events)} events emitted over {human(span)}, received in order")
