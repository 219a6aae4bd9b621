"""Steps that break a component of the backend mid-run and wait for it to recover (T112-T115):
the database (``postgres``), the message bus (``redis``), a worker, a gateway.

Everything goes through the target's control (``agentevents.testing.control``): ``fault`` acts
on one component and returns when it is done, ``answers`` says whether it is back. The backend's
supervisor restarts killed processes; every wait for recovery is a condition with a deadline,
never a bare sleep.
"""

from __future__ import annotations

import time

import orjson
from behave import then, when
from hamcrest import assert_that, equal_to, is_not

from agentevents.testing.client import Frame, HandshakeRefused, describe
from agentevents.testing.figures import record_figure
from agentevents.testing.matchers import timestamp
from agentevents.testing.measures import human
from agentevents.testing.parse_types import register_all
from agentevents.testing.polling import poll, retry_until
from agentevents.testing.steps_support import FAULT_RUN_TIMEOUT_S, last_seqs, resume

register_all()

RECOVERY_S = 60
ARCHIVE_DEADLINE_S = 40


async def control(world, action: str, component: str) -> None:
    await world.target.control.fault(action, component)


async def wait_thoughts(world, name: str, count: int) -> None:
    run = world.last_run(name)
    await run.client.wait_for(
        lambda f: len(run.client.events(run_id=run.run_id, types=("agent_thinking",))) >= count, 10,
        f"{count} thoughts of {name}'s agent")


# -- PostgreSQL (T112) ------------------------------------------------------------------------

@when("the database is killed while {name:Person}'s agent is thinking")
async def step_kill_postgres(context, name):
    world = context.world
    await wait_thoughts(world, name, 1)
    world.notes["outage_from"] = time.time()
    await control(world, "kill", "postgres")


@when("the database comes back")
async def step_postgres_back(context):
    world = context.world
    took = await retry_until(lambda: world.target.control.answers("postgres"), "PostgreSQL", RECOVERY_S,
                             on_slow=lambda: control(world, "start", "postgres"))
    world.notes["outage_to"] = time.time()
    record_figure(context, f"the database answered again {human(took)} after it was killed")


@then("the archive holds every event of {name:Person}'s run, as delivered")
async def step_archive_complete(context, name):
    world = context.world
    run, _end, _events = await world.finished(name, timeout_s=FAULT_RUN_TIMEOUT_S)
    events = world.events_of(name, run_id=run.run_id)
    delivered = {f.data["event_id"]: f for f in events}
    # The outage must have overlapped the run, or this proves nothing.
    during = [f for f in events if world.notes["outage_from"] <= timestamp(f).timestamp() <= world.notes["outage_to"]]
    assert during, f"no event was published while the database was down\n{describe(events)}"
    rows = await poll(lambda: world.target.control.archived_events(run.thread_id, run_id=run.run_id),
                      lambda rows: {r["event_id"] for r in rows} >= set(delivered), ARCHIVE_DEADLINE_S, 0.25)
    missing = sorted(delivered[e].data["seq"] for e in set(delivered) - {r["event_id"] for r in rows})
    record_figure(context, f"{len(during)} events published while the database was down; the archive holds "
                           f"{len(rows)} of the {len(delivered)} events delivered")
    assert not missing, f"the archive lacks seqs {missing} of {name}'s run after {ARCHIVE_DEADLINE_S}s"
    assert_that(len(rows), equal_to(len(delivered)))
    for row in rows:
        frame = delivered[row["event_id"]]
        assert orjson.loads(row["payload"]) == frame.data, \
            f"archived seq {row['seq']} differs from what was delivered:\n{row['payload'][:200]}\n{frame.raw[:200]}"


# -- Redis (T113) -----------------------------------------------------------------------------

@when("the message bus is killed while {name:Person}'s agent is thinking")
async def step_kill_redis(context, name):
    world = context.world
    await wait_thoughts(world, name, 2)
    world.notes["outage_from"] = time.time()
    await world.target.control.crash("redis")  # no instant restart: the outage lasts as long as the scenario says


@when("the message bus stays down for {outage:Duration}")
async def step_redis_down_for(context, outage):
    """The outage itself is the fault under test: its length is an input, not a wait for
    something to happen."""
    await context.world.settle(outage)


@when("the message bus comes back")
async def step_redis_back(context):
    world = context.world
    await world.target.control.release_restarts()
    took = await retry_until(lambda: world.target.control.answers("redis"), "Redis", RECOVERY_S,
                             on_slow=lambda: control(world, "start", "redis"))
    world.notes["outage_to"] = time.time()
    record_figure(context, f"the message bus answered again {human(took)} after it was let restart")


@then("some of {name:Person}'s events were produced while the message bus was down")
async def step_events_during_redis_outage(context, name):
    world = context.world
    run = world.last_run(name)
    events = world.events_of(name, run_id=run.run_id)
    during = [f for f in events if world.notes["outage_from"] <= timestamp(f).timestamp() <= world.notes["outage_to"]]
    record_figure(context, f"events of {name}'s run produced while the message bus was down: {len(during)}")
    assert during, f"no event was produced while Redis was down, so the outage proved nothing\n{describe(events)}"


@when("{name:Person} asks to catch up on the same connection")
async def step_resume_same(context, name):
    """The app asks to catch up after the outage; the service may still be reconnecting to Redis,
    so a `service_unavailable` answer is retried until the deadline."""
    world = context.world
    client = world.person(name).client
    threads = {r.thread_id for r in world.runs_of(name)}

    async def resumed() -> Frame:
        return await resume(client, {t: client.last_seq(t) for t in threads})

    await retry_until(resumed, f"{name}'s resume", timeout_s=30)


# -- a worker (T114) --------------------------------------------------------------------------

@when("the worker running {name:Person}'s agent is restarted gracefully")
async def step_restart_worker(context, name):
    world = context.world
    run = world.last_run(name)
    await wait_thoughts(world, name, 2)
    component = await world.target.control.worker_of_run(run.run_id)
    assert component, f"no worker recorded for {name}'s run: {component!r}"
    world.notes["worker"] = component
    world.notes["restart_from"] = time.monotonic()
    await control(world, "stop", component)  # returns once the process has exited
    world.notes["worker_exited_at"] = time.monotonic()
    await control(world, "start", component)
    record_figure(context, f"{component} took {human(world.notes['worker_exited_at'] - world.notes['restart_from'])} "
                           "to stop gracefully")


@then("{name:Person}'s run finished before its worker exited")
async def step_finished_first(context, name):
    world = context.world
    run, end, _events = await world.finished(name, timeout_s=FAULT_RUN_TIMEOUT_S)
    exited = world.notes["worker_exited_at"]
    record_figure(context, f"{name}'s run ended {human(exited - end.at)} before {world.notes['worker']} exited")
    assert end.at <= exited, f"the run ended {(end.at - exited) * 1000:.0f} ms after its worker exited"
    assert_that(end.data["data"]["status"], equal_to("completed"))
    errors = [f for f in run.client.events(run_id=run.run_id) if f.type == "agent_error"]
    assert not errors, f"the run reported errors\n{describe(errors)}"


# -- a gateway (T115) -------------------------------------------------------------------------

@when("the gateway holding {name:Person}'s connection is killed")
async def step_kill_gateway(context, name):
    world = context.world
    client = world.person(name).client
    gateway = client.frames[0].data["server_id"]
    await wait_thoughts(world, name, 2)
    world.notes["killed_gateway"] = gateway
    await control(world, "kill", gateway)
    await client.wait_closed(10)


@when("{name:Person} reconnects through the load balancer and catches up")
async def step_reconnect_lb(context, name):
    world = context.world
    last = last_seqs(world, name)
    attempts = 0

    async def connected() -> bool:
        nonlocal attempts
        attempts += 1
        try:
            await world.connect(name)
        except (OSError, TimeoutError, HandshakeRefused) as exc:
            raise AssertionError(f"reconnect attempt {attempts}: {exc}") from None
        return True

    took = await retry_until(connected, f"{name}'s connection", timeout_s=20)
    client = world.person(name).client
    record_figure(context, f"{name} reconnected after {attempts} attempt(s) in {human(took)}, now on "
                           f"{client.frames[0].data['server_id']}")
    await resume(client, last)


@then("{name:Person} is now served by the other gateway")
async def step_other_gateway(context, name):
    client = context.world.person(name).client
    assert_that(client.frames[0].data["server_id"], is_not(equal_to(context.world.notes["killed_gateway"])))
