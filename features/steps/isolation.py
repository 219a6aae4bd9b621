"""Steps about who receives what: several devices of one user, several users at once, groups,
subscriptions and source addresses. The checks are in agentevents.testing.behaviours.isolation:
every negative one waits for a defined end, then looks at every frame the connection received.
"""

from __future__ import annotations

from behave import given, then, when

from agentevents.testing.behaviours import isolation
from agentevents.testing.parse_types import register_all
from agentevents.testing.steps_support import ask_and_wait, start_at_once

register_all()


# -- several devices of one user -----------------------------------------------------------------

@given("{name:Person} is connected on {her:Possessive} {first:Device} and on {her:Possessive} {second:Device}")
async def step_two_devices(context, name, her, first, second):
    await isolation.connect_devices(context, name, first, second)


@when('{name:Person} asks the {agent:Agent} agent "{message}" again in that conversation '
      'from {her:Possessive} {device:Device}')
async def step_ask_again_from_device(context, name, agent, message, her, device):
    world = context.world
    await world.start(name, agent, message, thread_id=world.last_run(name).thread_id,
                      client=isolation.device(world, name, device))


@when('{name:Person} asks the {agent:Agent} agent "{message}" from {her:Possessive} {device:Device}')
async def step_ask_from_device(context, name, agent, message, her, device):
    await context.world.start(name, agent, message, client=isolation.device(context.world, name, device))


@given('{name:Person} has asked the {agent:Agent} agent "{message}" from {her:Possessive} {device:Device}')
async def step_asked_from_device(context, name, agent, message, her, device):
    await ask_and_wait(context.world, name, agent, message, client=isolation.device(context.world, name, device))


@then("{name:Person}'s {device:Device} receives only the events of its own conversation, complete")
async def step_device_only_own(context, name, device):
    await isolation.device_gets_only_its_own(context, name, device)


@when("{name:Person}'s {device:Device} follows that conversation")
async def step_device_follows(context, name, device):
    await isolation.follow(context, name, device)


@when("{name:Person}'s {device:Device} stops following that conversation")
async def step_device_unfollows(context, name, device):
    await isolation.stop_following(context, name, device)


@then("{name:Person}'s {device:Device} received the run asked while it followed the conversation, once and whole")
async def step_device_got_followed_run(context, name, device):
    await isolation.got_followed_run_once(context, name, device)


@then("{name:Person}'s {device:Device} received nothing of the run asked after it stopped following")
async def step_device_nothing(context, name, device):
    await isolation.nothing_after_unfollowing(context, name, device)


@then("{name:Person}'s {device:Device} received every run of the conversation whole")
async def step_device_whole_runs(context, name, device):
    await isolation.every_own_run_whole(context, name, device)


# -- two users at once ----------------------------------------------------------------------------

@given("{first:Person} and {second:Person} are connected to the same gateway")
async def step_same_gateway(context, first, second):
    await isolation.connect_to_same_gateway(context, first, second)


@when('{first:Person} and {second:Person} ask the {agent:Agent} agent "{message}" at the same moment')
async def step_two_ask_at_once(context, first, second, agent, message):
    await start_at_once(context.world, [(first, agent, message), (second, agent, message)])


@then("neither {first:Person} nor {second:Person} sees any identifier of the other's runs")
async def step_no_identifiers(context, first, second):
    await isolation.no_identifiers_of_each_other(context, first, second)


# -- one user, several runs at once ----------------------------------------------------------------

@when('{name:Person} asks the {agent:Agent} agent "{message}" {n:d} times at once')
async def step_ask_n_at_once(context, name, agent, message, n):
    await start_at_once(context.world, [(name, agent, message)] * n)


@then("{name:Person}'s {n:d} runs each have their own run id and conversation")
def step_distinct_runs(context, name, n):
    isolation.distinct_runs(context, name, n)


@then("each of {name:Person}'s runs receives exactly one agent_started, in its own conversation")
async def step_one_started_each(context, name):
    await isolation.one_start_per_run(context, name)


@then("each of {name:Person}'s runs follows the lifecycle")
async def step_each_lifecycle(context, name):
    await isolation.each_run_follows_lifecycle(context, name)


@when('{name:Person} asks the {first:Agent} agent "{m1}" and the {second:Agent} agent "{m2}" at the same time')
async def step_two_agents_at_once(context, name, first, m1, second, m2):
    await start_at_once(context.world, [(name, first, m1), (name, second, m2)])


@then("every event of {name:Person}'s runs is labelled with its own conversation")
async def step_labelled(context, name):
    await isolation.labelled_with_own_conversation(context, name)


@then("each conversation's start names the agent that runs in it")
async def step_start_names_agent(context):
    await isolation.starts_name_their_agents(context)


# -- groups of people -------------------------------------------------------------------------------

@given("{n:d} people are connected")
async def step_crowd(context, n):
    await isolation.connect_group(context, n)


@given("these people are connected from their own addresses and regions")
async def step_people_from(context):
    await isolation.connect_from_addresses(context, context.table)


@when('each of them asks the {agent:Agent} agent "{message}" at the same moment')
async def step_group_asks(context, agent, message):
    await start_at_once(context.world, [(name, agent, message) for name in isolation.group(context.world)])


@then("every one of them receives agent_started within {limit:Duration}")
async def step_group_started_within(context, limit):
    await isolation.group_started_within(context, limit)


@then("at least 95 % of them receive it within {limit:Duration}")
def step_p95(context, limit):
    isolation.started_p95_within(context, limit)


@then("each of them receives exactly one agent_started, for their own conversation")
async def step_group_one_started(context):
    await isolation.group_one_start_each(context)


@then("each of them receives nothing of the others' runs")
async def step_group_nothing_of_others(context):
    await isolation.group_nothing_of_others(context)


@then("each of them receives a complete run, in order")
async def step_group_complete(context):
    await isolation.group_complete_runs(context)


# -- two agents of one user thinking at once --------------------------------------------------------

@then("{name:Person}'s two agents thought at the same time")
async def step_overlap(context, name):
    await isolation.thought_at_the_same_time(context, name)


@then("each of {name:Person}'s thoughts carries the run, conversation and agent its text came from")
async def step_thoughts_attributed(context, name):
    await isolation.thoughts_attributed(context, name)
