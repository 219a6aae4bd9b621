"""Steps about starting agents: built-in agents by name, scripted agents by behaviour."""

import asyncio

from behave import when

from agentevents.testing.parse_types import register_all
from agentevents.testing.scripts import script_for

register_all()


@when('{name:Person} asks the {agent:Agent} agent "{message}" in the same thread')
async def step_ask_same_thread(context, name, agent, message):
    world = context.world
    await world.start(name, agent, message, thread_id=world.last_run(name).thread_id)


@when('{name:Person} asks the {agent:Agent} agent "{message}"')
async def step_ask(context, name, agent, message):
    await context.world.start(name, agent, message)


@when("{first:Person} and {second:Person} each start an agent that {behaviour}")
@when("{first:Person} and {second:Person} both start an agent that {behaviour}")
async def step_two_scripted(context, first, second, behaviour):
    world = context.world
    await asyncio.gather(*(world.start(n, "scripted", behaviour, options=script_for(behaviour))
                           for n in (first, second)))


@when("{name:Person} starts an agent that {behaviour}")
async def step_scripted(context, name, behaviour):
    await context.world.start(name, "scripted", behaviour, options=script_for(behaviour))
