"""The isolation scenarios (features/steps/isolation.py): who receives what, across several devices
of one user, several users at once, groups, subscriptions and source addresses.

The scripted agents name themselves in every thought, so a thought delivered to the wrong person
or attributed to the wrong agent shows. Every negative check waits for a defined end (the runs'
agent_completed and an in-order barrier on each connection) plus a short grace, then looks at
every frame the connection received.
"""

from __future__ import annotations

import asyncio
from typing import Any

import parse
from hamcrest import assert_that, empty, equal_to, has_length

from ..client import RecordingClient, describe
from ..crowds import connect_many
from ..figures import record_figure
from ..matchers import follows_lifecycle, gapless_seqs, only_events_of
from ..measures import human, percentile, spread
from ..scripts import register, steps
from ..steps_support import RUN_TIMEOUT_S, quiet_each, runs_ended
from ..world import Run, World


def agent_thought(agent: str, i: int, n: int) -> str:
    """What the named agent thinks at step i of n: its name is in the text, so a mix-up shows."""
    return f"{agent} thought {i} of {n}"


def _thinks_as(n: int, agent: str, pause: float) -> dict:
    items: list[dict] = []
    for i in range(1, n + 1):
        items.append({"think": agent_thought(agent, i, n), "agent": agent})
        if i < n:
            items.append({"sleep": pause})
    return steps(*items)


register('thinks {n:d} times as "{agent}", {pause:g} seconds apart', _thinks_as)




# -- who is where -----------------------------------------------------------------------------

def devices(world: World, name: str) -> dict[str, RecordingClient]:
    """The person's connections by device ("laptop", "phone")."""
    return world.notes.setdefault("devices", {}).setdefault(name, {})


def device(world: World, name: str, which: str) -> RecordingClient:
    found = devices(world, name).get(which)
    if found is None:
        raise AssertionError(f"{name} has no {which} connection")
    return found


def group(world: World) -> list[str]:
    """The names of the group of people connected in this scenario."""
    names = world.notes.get("group")
    if not names:
        raise AssertionError("no group of people was connected in this scenario")
    return names


# -- several devices of one user --------------------------------------------------------------

async def connect_devices(context, name: str, *which: str) -> None:
    for one in which:
        devices(context.world, name)[one] = await context.world.connect(name)


async def device_gets_only_its_own(context, name: str, which: str) -> None:
    world = context.world
    client = device(world, name, which)
    own = [r for r in world.runs_of(name) if r.client is client]
    assert own, f"{name} started nothing from her {which}"
    await runs_ended(world.runs_of(name))
    for other in devices(world, name).values():
        await world.quiet([other])
    threads = {r.thread_id for r in own}
    events = client.events()
    assert_that(events, only_events_of(world.person(name).user_id, threads))
    assert_that(events, gapless_seqs(start=1))
    for run in own:
        assert_that(client.events(run_id=run.run_id), follows_lifecycle())


async def follow(context, name: str, which: str) -> None:
    world = context.world
    client = device(world, name, which)
    thread_id = world.last_run(name).thread_id
    answer = await client.request({"type": "subscribe", "thread_id": thread_id})
    assert answer.type == "subscribed", f"subscribe refused: {answer.raw}"
    world.notes.setdefault("followed_from", {})[(name, which)] = len(world.runs_of(name))


async def stop_following(context, name: str, which: str) -> None:
    world = context.world
    client = device(world, name, which)
    thread_id = world.last_run(name).thread_id
    # Whatever the earlier run still sends must have reached the device before it stops following.
    await runs_ended(world.runs_of(name))
    answer = await client.request({"type": "unsubscribe", "thread_id": thread_id})
    assert answer.type == "unsubscribed", f"unsubscribe refused: {answer.raw}"
    assert answer.data.get("was_subscribed") is True, f"the {which} was not following the thread: {answer.raw}"
    world.notes.setdefault("unfollowed_at", {})[(name, which)] = (len(client.frames), len(world.runs_of(name)))


def followed_runs(world: World, name: str, which: str) -> tuple[list[Run], list[Run]]:
    """The person's runs asked while the device followed the conversation, and those asked after."""
    followed_from = world.notes.get("followed_from", {}).get((name, which))
    unfollowed = world.notes.get("unfollowed_at", {}).get((name, which))
    assert followed_from is not None and unfollowed is not None, \
        f"{name}'s {which} did not follow the conversation and then stop"
    runs = world.runs_of(name)
    return runs[followed_from:unfollowed[1]], runs[unfollowed[1]:]


async def got_followed_run_once(context, name: str, which: str) -> None:
    world = context.world
    client = device(world, name, which)
    followed, _after = followed_runs(world, name, which)
    assert len(followed) == 1, f"{len(followed)} runs were asked while the {which} followed; the check needs one"
    run = followed[0]
    assert run.client is not client, "the run was started from this device; the check needs the other one"
    await run.client.wait_run_end(run.run_id, RUN_TIMEOUT_S)
    await world.quiet([client])
    received = client.events(run_id=run.run_id)
    started = [f for f in received if f.type == "agent_started"]
    assert_that(started, has_length(1), client.describe())
    assert_that(started[0].data["thread_id"], equal_to(run.thread_id), client.describe())
    assert_that(started[0].data["data"]["agent_type"], equal_to(run.agent), client.describe())
    assert_that(received, follows_lifecycle())


async def nothing_after_unfollowing(context, name: str, which: str) -> None:
    world = context.world
    client = device(world, name, which)
    _followed, after = followed_runs(world, name, which)
    assert after, f"no run was asked after the {which} stopped following"
    since = world.notes["unfollowed_at"][(name, which)][0]
    await runs_ended(after)
    await world.quiet([client])
    leaked = [f for f in client.frames[since:] for run in after
              if f.data.get("thread_id") == run.thread_id or f.data.get("run_id") == run.run_id]
    assert not leaked, f"the {which} still received the conversation after it stopped following:\n{describe(leaked)}"


async def every_own_run_whole(context, name: str, which: str) -> None:
    client = device(context.world, name, which)
    own = [r for r in context.world.runs_of(name) if r.client is client]
    assert len(own) >= 2, f"{len(own)} runs were asked from {name}'s {which}; the check needs them all"
    for run in own:
        await client.wait_run_end(run.run_id, RUN_TIMEOUT_S)
        assert_that(client.events(run_id=run.run_id), follows_lifecycle())


# -- two users at once ------------------------------------------------------------------------

async def connect_to_same_gateway(context, first: str, second: str) -> None:
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


async def no_identifiers_of_each_other(context, first: str, second: str) -> None:
    world = context.world
    await runs_ended(world.runs_of(first) + world.runs_of(second))
    await quiet_each(world, [first, second])
    for me, other in ((first, second), (second, first)):
        secrets = {world.person(other).user_id} | {r.thread_id for r in world.runs_of(other)} \
            | {r.run_id for r in world.runs_of(other)}
        assert world.runs_of(other), f"{other} started no run"
        seen = [f for f in world.frames_of(me) if any(s in f.raw for s in secrets)]
        assert not seen, f"{me} saw identifiers of {other}'s runs:\n{describe(seen)}"


# -- one user, several runs at once -----------------------------------------------------------

def distinct_runs(context, name: str, n: int) -> None:
    runs = context.world.runs_of(name)
    assert_that(runs, has_length(n), describe(context.world.frames_of(name)))
    assert_that(len({r.run_id for r in runs}), equal_to(n), describe(context.world.frames_of(name)))
    assert_that(len({r.thread_id for r in runs}), equal_to(n), describe(context.world.frames_of(name)))


async def one_start_per_run(context, name: str) -> None:
    world = context.world
    await runs_ended(world.runs_of(name))
    await quiet_each(world, [name])
    for run in world.runs_of(name):
        started = [f for f in world.events_of(name) if f.type == "agent_started"
                   and f.data.get("run_id") == run.run_id]
        assert len(started) == 1, f"run {run.run_id[:8]}: {len(started)} agent_started\n{describe(started)}"
        assert started[0].data["thread_id"] == run.thread_id, \
            f"run {run.run_id[:8]} started in thread {started[0].data['thread_id']}, not {run.thread_id}"
        assert started[0].data["data"]["agent_type"] == run.agent, describe(started)


async def each_run_follows_lifecycle(context, name: str) -> None:
    runs = context.world.runs_of(name)
    assert runs, f"{name} started no run"
    for run in runs:
        await run.client.wait_run_end(run.run_id, RUN_TIMEOUT_S)
        assert_that(run.client.events(run_id=run.run_id), follows_lifecycle())


async def labelled_with_own_conversation(context, name: str) -> None:
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


async def starts_name_their_agents(context) -> None:
    world = context.world
    assert world.runs, "no run was started"
    for run in world.runs:
        started = await run.client.wait_for(
            lambda f, r=run: f.type == "agent_started" and f.data.get("thread_id") == r.thread_id,
            RUN_TIMEOUT_S, f"agent_started in thread {run.thread_id[:8]}")
        assert_that(started.data["data"]["agent_type"], equal_to(run.agent), run.client.describe())
        assert_that(started.data["run_id"], equal_to(run.run_id), run.client.describe())


# -- groups of people -------------------------------------------------------------------------

async def connect_group(context, n: int) -> None:
    world = context.world
    names = [f"Person{i:03d}" for i in range(1, n + 1)]
    await connect_many(world, [(name, {}) for name in names])
    world.notes["group"] = names


async def connect_from_addresses(context, rows: Any) -> None:
    """One connection per row (person, address, region): from that loopback address, in that region."""
    world = context.world
    names = []
    for row in rows:
        name, address, region = row["person"], row["address"], row["region"]
        client = await world.connect(name, local_addr=(address, 0), extra_headers={"X-Region": region})
        local = client.ws.local_address[0]
        assert local == address, f"{name} connected from {local}, not {address}"
        names.append(name)
    world.notes["group"] = names


async def group_started_within(context, limit: float) -> None:
    world = context.world
    names = group(world)

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


def started_p95_within(context, limit: float) -> None:
    waits = context.world.notes.get("started_waits")
    assert waits, "no waits were measured"
    p95 = percentile(waits, 95)
    record_figure(context, f"agent_started p95 {human(p95)} over {len(waits)} users — limit {human(limit)}")
    assert p95 < limit, f"95 % of agent_started took up to {human(p95)}; the limit is {human(limit)}"


async def group_one_start_each(context) -> None:
    world = context.world
    names = group(world)
    await runs_ended(r for n in names for r in world.runs_of(n))
    for name in names:
        run = world.last_run(name)
        await world.quiet([run.client])
        started = [f for f in world.events_of(name) if f.type == "agent_started"]
        assert len(started) == 1, f"{name} received {len(started)} agent_started\n{describe(started)}"
        assert_that(started[0].data["run_id"], equal_to(run.run_id), run.client.describe())
        assert_that(started[0].data["thread_id"], equal_to(run.thread_id), run.client.describe())
        assert_that(started[0].data["user_id"], equal_to(world.person(name).user_id), run.client.describe())


async def group_nothing_of_others(context) -> None:
    world = context.world
    names = group(world)
    await runs_ended(r for n in names for r in world.runs_of(n))
    await quiet_each(world, names)
    for name in names:
        person = world.person(name)
        own_threads = {r.thread_id for r in world.runs_of(name)}
        assert_that(world.events_of(name), only_events_of(person.user_id, own_threads))
        others = {world.person(o).user_id for o in names if o != name}
        others |= {r.thread_id for o in names if o != name for r in world.runs_of(o)}
        seen = [f for f in world.frames_of(name) if any(s in f.raw for s in others)]
        assert_that(seen, empty(), describe(seen))


async def group_complete_runs(context) -> None:
    world = context.world
    for name in group(world):
        run, _end, _events = await world.finished(name)
        events = run.client.events(run_id=run.run_id)
        assert_that(events, follows_lifecycle())
        assert_that(events, gapless_seqs(start=1))
        assert_that(len(events), equal_to(events[-1].data["data"]["event_count"]), describe(events))


# -- two agents of one user thinking at once --------------------------------------------------

async def thought_at_the_same_time(context, name: str) -> None:
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


async def thoughts_attributed(context, name: str) -> None:
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
