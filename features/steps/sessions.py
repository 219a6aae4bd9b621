"""Steps about connections: connecting, dropping, reconnecting and resuming conversations."""

from behave import given, when

from agentevents.testing.parse_types import register_all
from agentevents.testing.steps_support import reconnect_and_resume

register_all()


@given("{name:Person} is connected")
async def step_connected(context, name):
    await context.world.connect(name)


@when("{name:Person}'s connection drops")
async def step_drop(context, name):
    await context.world.person(name).client.drop()


@when("{name:Person} reconnects and resumes {her:Possessive} conversations")
async def step_reconnect_resume(context, name, her):
    await reconnect_and_resume(context.world, name)
