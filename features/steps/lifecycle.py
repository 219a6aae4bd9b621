"""Steps about a run's life against the odds: what a start announces, refused and failed
starts, expiring tokens, restarted gateways, cut networks and a frozen database. The checks are
in agentevents.testing.behaviours.lifecycle.

@fault_control steps break a component of the backend (and heal it); @archive_query steps read
its archive. Both go through the target's control (``agentevents.testing.control``).
"""

from __future__ import annotations

from behave import given, then, when

from agentevents.testing.behaviours import lifecycle
from agentevents.testing.parse_types import register_all

register_all()


# -- what a start announces ---------------------------------------------------------------------

@then("{name:Person}'s agent_started names {her:Possessive} run, {her:Possessive} conversation, "
      "{herself:Reflexive} and the {agent:Agent} agent")
async def step_started_names(context, name, her, herself, agent):
    await lifecycle.start_names_everyone(context, name, agent)


@then("every {event:EventType} {name:Person} received matches the published schema")
async def step_schema(context, event, name):
    await lifecycle.events_match_schema(context, event, name)


# -- refused and failed starts ----------------------------------------------------------------------

@then("the error tells {name:Person} that the agent could not start")
async def step_init_failed(context, name):
    await lifecycle.could_not_start(context, name)


@when("{name:Person} asks to start an agent without saying which one")
async def step_start_without_agent(context, name):
    await lifecycle.ask_without_agent(context, name)


@when('{name:Person} asks for the "{agent}" agent, which does not exist')
async def step_start_unknown(context, name, agent):
    await lifecycle.ask_unknown_agent(context, name, agent)


@then("{name:Person} is told {her:Possessive} request is malformed because the agent type is missing")
def step_malformed(context, name, her):
    lifecycle.told_malformed(context, name)


@then("{name:Person} is told the agent is unknown, with the list of agents {she:Pronoun} can use")
def step_unknown(context, name, she):
    lifecycle.told_unknown(context, name)


@then('{name:Person} is refused because {she:Pronoun} lacks the "{permission}" permission')
def step_forbidden(context, name, she, permission):
    lifecycle.refused_without(context, name, permission)


@then("{name:Person}'s mistaken request started no run")
async def step_mistake_started_nothing(context, name):
    await lifecycle.mistake_started_nothing(context, name)


@then("{name:Person} receives no agent_started")
async def step_no_run(context, name):
    await lifecycle.no_run_started(context, name)


# -- tokens -----------------------------------------------------------------------------------------

@when("{intruder:Person} tries to connect as {victim:Person} with a forged token")
async def step_forged(context, intruder, victim):
    await lifecycle.try_to_connect_as(context, intruder, victim, "forged")


@when("{intruder:Person} tries to connect as {victim:Person} with an expired token")
async def step_expired(context, intruder, victim):
    await lifecycle.try_to_connect_as(context, intruder, victim, "expired")


@when("{intruder:Person} tries to connect as {victim:Person} without a token")
async def step_no_token(context, intruder, victim):
    await lifecycle.try_to_connect_as(context, intruder, victim, "missing")


@then("{name:Person} is turned away with HTTP {status:d}")
def step_turned_away(context, name, status):
    lifecycle.turned_away(context, status)


@then("{name:Person}'s connection is closed because {her:Possessive} token expired")
async def step_closed_expired(context, name, her):
    await lifecycle.closed_when_token_expired(context, name, her)


@then("{name:Person} receives every event of {her:Possessive} run on the same connection, "
      "after {her:Possessive} first token expired")
async def step_stayed(context, name, her):
    await lifecycle.stayed_past_first_token(context, name)


# -- gateway restart and network cut -------------------------------------------------------------------

@when("the gateway holding {name:Person}'s connection restarts after {her:Possessive} first thought")
async def step_restart_gateway(context, name, her):
    await lifecycle.restart_gateway_mid_run(context, name)


@given("{name:Person} is connected through an unreliable network")
async def step_via_proxy(context, name):
    await lifecycle.connect_through_proxy(context, name)


@when("the network link to {name:Person} is cut after {her:Possessive} {n:Ordinal} thought")
async def step_cut(context, name, her, n):
    await lifecycle.cut_after_thoughts(context, name, n)


@when("{name:Person} reconnects through the same network and resumes {her:Possessive} conversations")
async def step_reconnect_proxy(context, name, her):
    await lifecycle.reconnect_through_proxy(context, name)


@when("{name:Person} reconnects and resumes {her:Possessive} conversation from the very beginning")
async def step_resume_from_zero(context, name, her):
    await lifecycle.resume_from_the_beginning(context, name)


@then("{name:Person}'s new connection receives agent_started exactly once")
async def step_new_started_once(context, name):
    await lifecycle.new_connection_started_once(context, name)


@then("{name:Person}'s new connection receives the whole run exactly once, in order")
async def step_new_whole_run(context, name):
    await lifecycle.new_connection_whole_run(context, name)


@then("{name:Person} receives every event of {her:Possessive} run exactly once across {her:Possessive} "
      "connections")
async def step_whole_run_once(context, name, her):
    await lifecycle.whole_run_across_connections(context, name)


@then("{name:Person} receives each of the {n:d} thoughts of {her:Possessive} run exactly once")
async def step_every_thought_once(context, name, n, her):
    await lifecycle.every_thought_once(context, name, n)


# -- PostgreSQL frozen -------------------------------------------------------------------------------

@given("the database is paused")
async def step_pause_postgres(context):
    await lifecycle.pause_database(context)


@when("the database resumes once {name:Person}'s run has ended")
async def step_resume_postgres(context, name):
    await lifecycle.resume_database_after_run(context, name)


@then("the archive holds every event of {name:Person}'s run, exactly as {she:Pronoun} received it")
async def step_archive(context, name, she):
    await lifecycle.archive_holds_run(context, name)
