"""Steps about connections: connecting, dropping, reconnecting and resuming conversations."""

from behave import given, when

from agentevents.testing.parse_types import register_all

register_all()


@given("{name:Person} is connected")
async def step_connected(context, name):
    await context.world.connect(name)


@when("{name:Person}'s connection drops")
async def step_drop(context, name):
    await context.world.person(name).client.drop()


@when("{name:Person} reconnects and resumes {her:Possessive} conversations")
async def step_reconnect_resume(context, name, her):
    world = context.world
    threads = {r.thread_id for r in world.runs_of(name)}
    last = {t: max((f.data["seq"] for f in world.events_of(name, thread_id=t)), default=0) for t in threads}
    client = await world.connect(name)
    answer = await client.request({"type": "resume", "threads": last})
    assert answer.type == "resumed", f"resume refused: {answer.raw}"
