"""Steps about who receives what: several devices of one user, several users at once, groups,
subscriptions and source addresses.

Every negative check waits for a defined end (the runs' agent_completed and a ping's pong on
each connection) plus a short grace, then looks at every frame the connection received.
"""

from __future__ import annotations

import asyncio

import parse
from behave import given, then, when
from hamcrest import assert_that, empty, equal_to, has_length

from agentevents.testing.behaviours import isolation as _isolation_behaviours  # noqa: F401  (registers them)
from agentevents.testing.client import describe
from agentevents.testing.crowds import connect_many
from agentevents.testing.figures import record_figure
from agentevents.testing.matchers import follows_lifecycle, gapless_seqs, only_events_of
from agentevents.testing.measures import human, percentile, spread
from agentevents.testing.parse_types import register_all
from agentevents.testing.steps_support import RUN_TIMEOUT_S, runs_ended

register_all()



# -- helpers -------------------------------------------------------------------------------------

def _devices(context, name: str) -> dict:
    return context.world.notes.setdefault("devices", {}).setdefault(name, {})


def _device(context, name: str, device: str):
    found = _devices(context, name).get(device)
    if found is None:
        raise AssertionError(f"{name} has no {device} connection")
    return found


def _group(context) -> list[str]:
    group = context.world.notes.get("group")
    if not group:
        raise AssertionError("no group of people was connected in this scenario")
    return group


async def _quiet(world, client) -> None:
    """The defined end on one connection: an in-order barrier, then the grace."""
    await world.quiet([client])


# -- several devices of one user -----------------------------------------------------------------

@given("{name:Person} is connected on {her:Possessive} {first:Device} and on {her:Possessive} {second:Device}")
async def step_two_devices(context, name, her, first, second):
    world = context.world
    for device in (first, second):
        _devices(context, name)[device] = await world.connect(name)


@when('{name:Person} asks the {agent:Agent} agent "{message}" again in that conversation '
      'from {her:Possessive} {device:Device}')
async def step_ask_again_from_device(context, name, agent, message, her, device):
    world = context.world
    await world.start(name, agent, message, thread_id=world.last_run(name).thread_id,
                      client=_device(context, name, device))


@when('{name:Person} asks the {agent:Agent} agent "{message}" from {her:Possessive} {device:Device}')
async def step_ask_from_device(context, name, agent, message, her, device):
    await context.world.start(name, agent, message, client=_device(context, name, device))


@given('{name:Person} has asked the {agent:Agent} agent "{message}" from {her:Possessive} {device:Device}')
async def step_asked_from_device(context, name, agent, message, her, device):
    run = await context.world.start(name, agent, message, client=_device(context, name, device))
    await run.client.wait_run_end(run.run_id, RUN_TIMEOUT_S)


@then("{name:Person}'s {device:Device} receives only the events of its own conversation, complete")
async def step_device_only_own(context, name, device):
    world = context.world
    client = _device(context, name, device)
    own = [r for r in world.runs_of(name) if r.client is client]
    assert own, f"{name} started nothing from her {device}"
    await runs_ended(world.runs_of(name))
    for other in _devices(context, name).values():
        await _quiet(world, other)
    threads = {r.thread_id for r in own}
    events = client.events()
    assert_that(events, only_events_of(world.person(name).user_id, threads))
    assert_that(events, gapless_seqs(start=1))
    for run in own:
        assert_that(client.events(run_id=run.run_id), follows_lifecycle())


@when("{name:Person}'s {device:Device} follows that conversation")
async def step_device_follows(context, name, device):
    world = context.world
    client = _device(context, name, device)
    thread_id = world.last_run(name).thread_id
    answer = await client.request({"type": "subscribe", "thread_id": thread_id})
    assert answer.type == "subscribed", f"subscribe refused: {answer.raw}"
    world.notes.setdefault("followed_from", {})[(name, device)] = len(world.runs_of(name))


@when("{name:Person}'s {device:Device} stops following that conversation")
async def step_device_unfollows(context, name, device):
    world = context.world
    client = _device(context, name, device)
    thread_id = world.last_run(name).thread_id
    # Whatever the earlier run still sends must have reached the device before it stops following.
    await runs_ended(world.runs_of(name))
    answer = await client.request({"type": "unsubscribe", "thread_id": thread_id})
    assert answer.type == "unsubscribed", f"unsubscribe refused: {answer.raw}"
    assert answer.data.get("was_subscribed") is True, f"the {device} was not following the thread: {answer.raw}"
    world.notes.setdefault("unfollowed_at", {})[(name, device)] = (len(client.frames), len(world.runs_of(name)))


def _followed_runs(context, name: str, device: str) -> tuple[list, list]:
    """The person's runs asked while the device followed the conversation, and those asked after."""
    world = context.world
    followed_from = world.notes.get("followed_from", {}).get((name, device))
    unfollowed = world.notes.get("unfollowed_at", {}).get((name, device))
    assert followed_from is not None and unfollowed is not None, \
        f"{name}'s {device} did not follow the conversation and then stop"
    runs = world.runs_of(name)
    return runs[followed_from:unfollowed[1]], runs[unfollowed[1]:]


@then("{name:Person}'s {device:Device} received the run asked while it followed the conversation, once and whole")
async def step_device_got_followed_run(context, name, device):
    world = context.world
    client = _device(context, name, device)
    followed, _after = _followed_runs(context, name, device)
    assert len(followed) == 1, f"{len(followed)} runs were asked while the {device} followed; the check needs one"
    run = followed[0]
    assert run.client is not client, "the run was started from this device; the check needs the other one"
    await run.client.wait_run_end(run.run_id, RUN_TIMEOUT_S)
    await _quiet(world, client)
    received = client.events(run_id=run.run_id)
    started = [f for f in received if f.type == "agent_started"]
    assert_that(started, has_length(1), client.describe())
    assert_that(started[0].data["thread_id"], equal_to(run.thread_id), client.describe())
    assert_that(started[0].data["data"]["agent_type"], equal_to(run.agent), client.describe())
    assert_that(received, follows_lifecycle())


@then("{name:Person}'s {device:Device} received nothing of the run asked after it stopped following")
async def step_device_nothing(context, name, device):
    world = context.world
    client = _device(context, name, device)
    _followed, after = _followed_runs(context, name, device)
    assert after, f"no run was asked after the {device} stopped following"
    since = world.notes["unfollowed_at"][(name, device)][0]
    await runs_ended(after)
    await _quiet(world, client)
    leaked = [f for f in client.frames[since:] for run in after
              if f.data.get("thread_id") == run.thread_id or f.data.get("run_id") == run.run_id]
    assert not leaked, f"the {device} still received the conversation after it stopped following:\n{describe(leaked)}"


@then("{name:Person}'s {device:Device} received every run of the conversation whole")
async def step_device_whole_runs(context, name, device):
    client = _device(context, name, device)
    own = [r for r in context.world.runs_of(name) if r.client is client]
    assert len(own) >= 2, f"{len(own)} runs were asked from {name}'s {device}; the check needs them all"
    for run in own:
        await client.wait_run_end(run.run_id, RUN_TIMEOUT_S)
        assert_that(client.events(run_id=run.run_id), follows_lifecycle())


# -- two users at once ----------------------------------------------------------------------------

@given("{first:Person} and {second:Person} are connected to the same gateway")
async def step_same_gateway(context, first, second):
    """Both users on one gateway: where the fan-out of live events could cross users."""
    world = context.world
    server = (await world.connect(first)).frames[0].data["server_id"]
    for _attempt in range(10):
        client = await world.connect(second)
        if client.frames[0].data["server_id"] == server:
            break
    else:
        raise AssertionError(f"{second} never reached {first}'s gateway {server!r} in 10 connections")
    # Only the connection that shares the gateway takes part: the others are closed.
    person = world.person(second)
    for other in person.clients[:-1]:
        await other.close()
    person.clients[:] = person.clients[-1:]


@when('{first:Person} and {second:Person} ask the {agent:Agent} agent "{message}" at the same moment')
async def step_two_ask_at_once(context, first, second, agent, message):
    world = context.world
    await asyncio.gather(world.start(first, agent, message), world.start(second, agent, message))


@then("neither {first:Person} nor {second:Person} sees any identifier of the other's runs")
async def step_no_identifiers(context, first, second):
    world = context.world
    await runs_ended(world.runs_of(first) + world.runs_of(second))
    for name in (first, second):
        for client in world.person(name).clients:
            await _quiet(world, client)
    for me, other in ((first, second), (second, first)):
        secrets = {world.person(other).user_id} | {r.thread_id for r in world.runs_of(other)} \
            | {r.run_id for r in world.runs_of(other)}
        assert world.runs_of(other), f"{other} started no run"
        seen = [f for f in world.frames_of(me) if any(s in f.raw for s in secrets)]
        assert not seen, f"{me} saw identifiers of {other}'s runs:\n{describe(seen)}"


# -- one user, several runs at once ----------------------------------------------------------------

@when('{name:Person} asks the {agent:Agent} agent "{message}" {n:d} times at once')
async def step_ask_n_at_once(context, name, agent, message, n):
    world = context.world
    await asyncio.gather(*(world.start(name, agent, message) for _ in range(n)))


@then("{name:Person}'s {n:d} runs each have their own run id and conversation")
async def step_distinct_runs(context, name, n):
    runs = context.world.runs_of(name)
    assert_that(runs, has_length(n), describe(context.world.frames_of(name)))
    assert_that(len({r.run_id for r in runs}), equal_to(n), describe(context.world.frames_of(name)))
    assert_that(len({r.thread_id for r in runs}), equal_to(n), describe(context.world.frames_of(name)))


@then("each of {name:Person}'s runs receives exactly one agent_started, in its own conversation")
async def step_one_started_each(context, name):
    world = context.world
    await runs_ended(world.runs_of(name))
    for client in world.person(name).clients:
        await _quiet(world, client)
    for run in world.runs_of(name):
        started = [f for f in world.events_of(name) if f.type == "agent_started"
                   and f.data.get("run_id") == run.run_id]
        assert len(started) == 1, f"run {run.run_id[:8]}: {len(started)} agent_started\n{describe(started)}"
        assert started[0].data["thread_id"] == run.thread_id, \
            f"run {run.run_id[:8]} started in thread {started[0].data['thread_id']}, not {run.thread_id}"
        assert started[0].data["data"]["agent_type"] == run.agent, describe(started)


@then("each of {name:Person}'s runs follows the lifecycle")
async def step_each_lifecycle(context, name):
    world = context.world
    runs = world.runs_of(name)
    assert runs, f"{name} started no run"
    for run in runs:
        await run.client.wait_run_end(run.run_id, RUN_TIMEOUT_S)
        assert_that(run.client.events(run_id=run.run_id), follows_lifecycle())


@when('{name:Person} asks the {first:Agent} agent "{m1}" and the {second:Agent} agent "{m2}" at the same time')
async def step_two_agents_at_once(context, name, first, m1, second, m2):
    world = context.world
    await asyncio.gather(world.start(name, first, m1), world.start(name, second, m2))


@then("every event of {name:Person}'s runs is labelled with its own conversation")
async def step_labelled(context, name):
    world = context.world
    await runs_ended(world.runs_of(name))
    runs = world.runs_of(name)
    assert len({r.thread_id for r in runs}) == len(runs), "two runs share a conversation"
    thread_of = {r.run_id: r.thread_id for r in runs}
    run_of = {r.thread_id: r.run_id for r in runs}
    wrong = [f for f in world.events_of(name)
             if thread_of.get(f.data.get("run_id")) != f.data.get("thread_id")
             or run_of.get(f.data.get("thread_id")) != f.data.get("run_id")]
    assert not wrong, f"events in the wrong conversation:\n{describe(wrong)}"
    for run in runs:
        assert run.client.events(run_id=run.run_id), f"run {run.run_id[:8]} delivered nothing"


@then("each conversation's start names the agent that runs in it")
async def step_start_names_agent(context):
    world = context.world
    assert world.runs, "no run was started"
    for run in world.runs:
        started = await run.client.wait_for(
            lambda f, r=run: f.type == "agent_started" and f.data.get("thread_id") == r.thread_id,
            RUN_TIMEOUT_S, f"agent_started in thread {run.thread_id[:8]}")
        assert_that(started.data["data"]["agent_type"], equal_to(run.agent), run.client.describe())
        assert_that(started.data["run_id"], equal_to(run.run_id), run.client.describe())


# -- groups of people -------------------------------------------------------------------------------

@given("{n:d} people are connected")
async def step_crowd(context, n):
    world = context.world
    names = [f"Person{i:03d}" for i in range(1, n + 1)]
    await connect_many(world, [(name, {}) for name in names])
    world.notes["group"] = names


@given("these people are connected from their own addresses and regions")
async def step_people_from(context):
    world = context.world
    names = []
    for row in context.table:
        name, address, region = row["person"], row["address"], row["region"]
        client = await world.connect(name, local_addr=(address, 0), extra_headers={"X-Region": region})
        local = client.ws.local_address[0]
        assert local == address, f"{name} connected from {local}, not {address}"
        names.append(name)
    world.notes["group"] = names


@when('each of them asks the {agent:Agent} agent "{message}" at the same moment')
async def step_group_asks(context, agent, message):
    world = context.world
    await asyncio.gather(*(world.start(name, agent, message) for name in _group(context)))


@then("every one of them receives agent_started within {limit:Duration}")
async def step_group_started_within(context, limit):
    world = context.world
    names = _group(context)

    async def wait_started(name):
        run = world.last_run(name)
        frame = await run.client.wait_for(lambda f: f.type == "agent_started" and f.data.get("run_id") == run.run_id,
                                          max(limit * 4, 10), f"{name}'s agent_started")
        return frame.at - run.sent_at

    waits = await asyncio.gather(*(wait_started(n) for n in names))
    world.notes["started_waits"] = waits
    record_figure(context, f"agent_started {spread(waits)} over {len(waits)} users — limit {human(limit)} each")
    late = sorted((w, n) for w, n in zip(waits, names, strict=True) if w > limit)
    assert not late, f"{len(late)} of {len(names)} agent_started later than {human(limit)}: " \
        + ", ".join(f"{n} {human(w)}" for w, n in late[-10:])


@then("at least 95 % of them receive it within {limit:Duration}")
async def step_p95(context, limit):
    waits = context.world.notes.get("started_waits")
    assert waits, "no waits were measured"
    p95 = percentile(waits, 95)
    record_figure(context, f"agent_started p95 {human(p95)} over {len(waits)} users — limit {human(limit)}")
    assert p95 < limit, f"95 % of agent_started took up to {human(p95)}; the limit is {human(limit)}"


@then("each of them receives exactly one agent_started, for their own conversation")
async def step_group_one_started(context):
    world = context.world
    names = _group(context)
    await runs_ended(r for n in names for r in world.runs_of(n))
    for name in names:
        run = world.last_run(name)
        await _quiet(world, run.client)
        started = [f for f in world.events_of(name) if f.type == "agent_started"]
        assert len(started) == 1, f"{name} received {len(started)} agent_started\n{describe(started)}"
        assert_that(started[0].data["run_id"], equal_to(run.run_id), run.client.describe())
        assert_that(started[0].data["thread_id"], equal_to(run.thread_id), run.client.describe())
        assert_that(started[0].data["user_id"], equal_to(world.person(name).user_id), run.client.describe())


@then("each of them receives nothing of the others' runs")
async def step_group_nothing_of_others(context):
    world = context.world
    names = _group(context)
    await runs_ended(r for n in names for r in world.runs_of(n))
    for name in names:
        for client in world.person(name).clients:
            await _quiet(world, client)
    for name in names:
        person = world.person(name)
        own_threads = {r.thread_id for r in world.runs_of(name)}
        assert_that(world.events_of(name), only_events_of(person.user_id, own_threads))
        others = {world.person(o).user_id for o in names if o != name}
        others |= {r.thread_id for o in names if o != name for r in world.runs_of(o)}
        seen = [f for f in world.frames_of(name) if any(s in f.raw for s in others)]
        assert_that(seen, empty(), describe(seen))


@then("each of them receives a complete run, in order")
async def step_group_complete(context):
    world = context.world
    for name in _group(context):
        run, _end, _events = await world.finished(name)
        events = run.client.events(run_id=run.run_id)
        assert_that(events, follows_lifecycle())
        assert_that(events, gapless_seqs(start=1))
        assert_that(len(events), equal_to(events[-1].data["data"]["event_count"]), describe(events))


# -- two agents of one user thinking at once --------------------------------------------------------

@then("{name:Person}'s two agents thought at the same time")
async def step_overlap(context, name):
    world = context.world
    runs = world.runs_of(name)
    assert len(runs) == 2, f"{name} started {len(runs)} runs, not 2"
    await runs_ended(world.runs_of(name))
    spans = []
    for run in runs:
        thoughts = run.client.events(run_id=run.run_id, types=("agent_thinking",))
        assert thoughts, f"run {run.run_id[:8]} delivered no thought\n{run.client.describe()}"
        spans.append((thoughts[0].at, thoughts[-1].at))
    (a0, a1), (b0, b1) = spans
    assert a0 < b1 and b0 < a1, "the two agents did not think at the same time; the check needs overlap"


@then("each of {name:Person}'s thoughts carries the run, conversation and agent its text came from")
async def step_thoughts_attributed(context, name):
    world = context.world
    runs = world.runs_of(name)
    await runs_ended(world.runs_of(name))
    pattern = parse.compile("{agent} thought {i:d} of {n:d}")
    authors = {}
    for run in runs:
        thoughts = run.client.events(run_id=run.run_id, types=("agent_thinking",))
        texts = [pattern.parse(f.data["data"]["reasoning"]) for f in thoughts]
        assert all(texts), f"a thought of run {run.run_id[:8]} is not the script's text\n{describe(thoughts)}"
        names = {t["agent"] for t in texts}
        assert len(names) == 1, f"run {run.run_id[:8]} carries thoughts of {sorted(names)}\n{describe(thoughts)}"
        author = names.pop()
        authors[run.run_id] = author
        n = texts[0]["n"]
        assert [t["i"] for t in texts] == list(range(1, n + 1)), \
            f"run {run.run_id[:8]}: thoughts {[t['i'] for t in texts]} of {n}\n{describe(thoughts)}"
        wrong = [f for f in thoughts if f.data["thread_id"] != run.thread_id or f.data["agent_name"] != author]
        assert not wrong, f"thoughts of {author} with the wrong conversation or agent:\n{describe(wrong)}"
    assert len(set(authors.values())) == len(runs), f"the runs did not think as different agents: {authors}"
    known = {r.run_id for r in runs}
    strays = [f for f in world.events_of(name) if f.type == "agent_thinking" and f.data.get("run_id") not in known]
    assert not strays, f"thoughts of unknown runs:\n{describe(strays)}"
