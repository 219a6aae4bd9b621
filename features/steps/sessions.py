"""Steps about people and their connections."""

from __future__ import annotations

from behave import given, when

from agentevents.testing.parse_types import register_all

register_all()


@given("{name:Person} is connected")
@when("{name:Person} connects")
async def step_connected(context, name):
    await context.world.connect(name)
