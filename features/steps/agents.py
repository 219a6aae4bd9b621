"""Steps about starting and following agent runs."""

from __future__ import annotations

import time

from behave import when

from agentevents.testing.parse_types import register_all

register_all()


@when('{name:Person} asks the {agent:Agent} agent "{message}"')
async def step_ask(context, name, agent, message):
    person = context.world.person(name)
    sent = time.monotonic()
    answer = await person.client.start_agent(agent, message)
    assert answer.type == "run_accepted", f"{name}'s request was not accepted: {answer.raw}"
    person.runs["last"] = answer.data["run_id"]
    person.threads["last"] = answer.data["thread_id"]
    context.world.notes["sent_at"] = sent
