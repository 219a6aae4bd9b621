"""Steps about who people are: permissions, tiers, tokens.

The scripted agent's permission (agents:script) is no step: a scenario tagged @conformance_agent
gives it to every person in it (environment.before_scenario).
"""

from behave import given, when

from agentevents.testing.parse_types import register_all

register_all()


@given('{name:Person} holds the "{permission}" permission')
def step_permission(context, name, permission):
    context.world.person(name).permissions.append(permission)


@given("{name:Person} holds no permission")
def step_no_permission(context, name):
    """Not even what the scenario's tags grant everyone (@conformance_agent)."""
    context.world.person(name).permissions.clear()


@given("{name:Person} is on the {tier:Tier} tier")
def step_tier(context, name, tier):
    context.world.person(name).tier = tier


@given("{name:Person} is connected with a token that expires in {ttl:Duration}")
async def step_short_token(context, name, ttl):
    world = context.world
    await world.connect(name, token=world.token_for(world.person(name), ttl_s=ttl))


@when("{name:Person} refreshes {her:Possessive} token")
async def step_refresh(context, name, her):
    world = context.world
    person = world.person(name)
    answer = await person.client.request({"type": "auth_refresh", "token": world.token_for(person, ttl_s=3600)})
    assert answer.type == "auth_refreshed", f"refresh refused: {answer.raw}"
