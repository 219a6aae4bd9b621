"""Steps about starting agents: built-in agents by name, scripted agents by behaviour."""

import asyncio

from behave import when

from agentevents.testing.parse_types import register_all
from agentevents.testing.scripts import script_for

register_all()


@when('{name:Person} asks the {agent:Agent} agent "{message}" in the same conversation')
async def step_ask_same_conversation(context, name, agent, message):
    world = context.world
    await world.start(name, agent, message, thread_id=world.last_run(name).thread_id)


@when('{name:Person} asks the {agent:Agent} agent "{message}" on the same connection')
async def step_ask_same_connection(context, name, agent, message):
    """After a refused request: the connection it was refused on still serves."""
    person = context.world.person(name)
    assert len(person.clients) == 1 and person.client.connected, \
        f"{name}'s first connection is gone: {person.client.close_code} {person.client.close_reason}"
    await context.world.start(name, agent, message)


@when('{name:Person} asks the {agent:Agent} agent "{message}"')
async def step_ask(context, name, agent, message):
    await context.world.start(name, agent, message)


@when("{first:Person} and {second:Person} each start an agent that {behaviour}")
@when("{first:Person} and {second:Person} both start an agent that {behaviour}")
async def step_two_scripted(context, first, second, behaviour):
    world = context.world
    await asyncio.gather(*(world.start(n, "scripted", behaviour, options=script_for(behaviour))
                           for n in (first, second)))


@when("{first:Person} and {second:Person} each try to start an agent that {behaviour}")
async def step_two_try_scripted(context, first, second, behaviour):
    """Both ask at the same moment; either may be refused. The answers are kept per person."""
    world = context.world
    answers = await asyncio.gather(*(world.try_start(n, "scripted", behaviour, options=script_for(behaviour))
                                     for n in (first, second)))
    world.notes.setdefault("answers", {}).update(dict(zip((first, second), answers, strict=True)))


@when("{name:Person} starts an agent that {behaviour}")
async def step_scripted(context, name, behaviour):
    await context.world.start(name, "scripted", behaviour, options=script_for(behaviour))
