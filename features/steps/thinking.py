"""Steps about the agent's thinking: what the user sees of its reasoning, how much, how fast,
in which language, how long, with which details, for whom, and what is hidden.

The scripted behaviours and the checks are in agentevents.testing.behaviours.thinking: the agent's
reasoning is built from functions there, and the checks compare what arrived with the same
functions, so a changed, lost, reordered or doubled thought shows.
"""

from __future__ import annotations

from behave import given, then

from agentevents.testing.behaviours import thinking
from agentevents.testing.parse_types import register_all
from agentevents.testing.steps_support import ask_and_wait

register_all()


# -- content ---------------------------------------------------------------------------------------

@then("each of {name:Person}'s thoughts has something to say")
async def step_nonempty(context, name):
    await thinking.each_has_something_to_say(context, name)


@then("each of {name:Person}'s thoughts has its text, a step number from 1 and a details object")
async def step_thought_fields(context, name):
    await thinking.each_has_its_fields(context, name)


@then("{name:Person}'s thoughts arrive numbered 1 to {n:d}, in the order they were reasoned")
async def step_numbered_in_order(context, name, n):
    await thinking.numbered_in_order(context, name, n)


@then("{name:Person} receives {her:Possessive} {writing} thought exactly as it was written")
async def step_multilingual(context, name, her, writing):
    await thinking.written_as_sent(context, name, writing)


@then("{name:Person}'s thought shows the email, the card number and the token as redacted")
async def step_redacted_markers(context, name):
    await thinking.pii_marked_redacted(context, name)


@then("none of those originals appears in any frame {name:Person} received")
async def step_no_originals(context, name):
    await thinking.no_pii_originals(context, name)


@then("{name:Person}'s thought carries its phase, items and conclusion unchanged")
async def step_structured(context, name):
    await thinking.structured_unchanged(context, name)


@then("{name:Person}'s {n:d}-character thought arrives cut to {limit:d} characters with a truncation marker")
async def step_truncated_text(context, name, n, limit):
    await thinking.cut_with_marker(context, name, n, limit)


@then("{name:Person} is told the thought was truncated from {n:d} characters")
async def step_truncated_flags(context, name, n):
    await thinking.told_truncated(context, name, n)


@then("every thought {name:Person} received says what kind of thinking it is")
async def step_kind(context, name):
    await thinking.each_says_its_kind(context, name)


@then("every confidence in {name:Person}'s thoughts is a number between 0 and 1")
async def step_confidence(context, name):
    await thinking.confidences_in_range(context, name)


@then("{name:Person}'s thoughts come from the {a}, the {b} and the {c}, in that order")
async def step_team_order(context, name, a, b, c):
    await thinking.thinkers_in_order(context, name, [a, b, c])


# -- throttling and bursts -------------------------------------------------------------------------

@then("{name:Person} receives at most {most:d} thoughts for the {n:d} updates")
async def step_throttled_count(context, name, most, n):
    await thinking.at_most(context, name, most, n)


@then("{name:Person}'s last thought stands for several updates and shows the text of update {n:d}")
async def step_last_coalesced(context, name, n):
    await thinking.last_coalesced(context, name, n)


@then("the thoughts {name:Person} received account for all {n:d} updates")
async def step_coalesced_sum(context, name, n):
    await thinking.account_for_all(context, name, n)


@then("{name:Person} receives all {n:d} thoughts of the burst, in order")
async def step_burst_complete(context, name, n):
    await thinking.whole_burst(context, name, n)


# -- context of a second run ------------------------------------------------------------------------

@given('{name:Person} has asked the {agent:Agent} agent "{message}" and seen the answer')
async def step_asked_and_answered(context, name, agent, message):
    await ask_and_wait(context.world, name, agent, message)


@then("{name:Person}'s second run continues the conversation's numbering")
async def step_continues_numbering(context, name):
    await thinking.continues_numbering(context, name)


@then("{name:Person}'s second run refers to the earlier run in its thinking")
async def step_refers_to_earlier(context, name):
    await thinking.refers_to_earlier(context, name)


# -- timing ----------------------------------------------------------------------------------------

@then("each of {name:Person}'s thoughts reaches {her:Objective} within {limit:Duration} of being stamped")
async def step_thought_latency(context, name, her, limit):
    await thinking.each_within(context, name, limit)


@then("{name:Person}'s connection stays open for the whole run")
async def step_stays_open(context, name):
    await thinking.open_for_the_whole_run(context, name)


@then("every one of {name:Person}'s {n:d} thoughts arrives, none more than {gap:Duration} after the previous one")
async def step_regular_updates(context, name, n, gap):
    await thinking.regular_updates(context, name, n, gap)


@then("{name:Person}'s run is stopped with status timeout within {slack:Duration} after its {limit:d}-second limit")
async def step_timeout_prompt(context, name, slack, limit):
    await thinking.stopped_at_limit(context, name, slack, limit)


@then("the timeout still delivers the draft and explains what happened")
async def step_timeout_partial(context):
    await thinking.timeout_delivers_draft(context)


# -- errors and recovery ---------------------------------------------------------------------------

@then("the error tells {name:Person} the agent can carry on")
async def step_error_recoverable(context, name):
    await thinking.error_is_recoverable(context, name)


@then("the thought after the error explains the recovery")
async def step_recovery_thought(context):
    await thinking.recovery_explained(context)


# -- personalization ------------------------------------------------------------------------------

@given("{name:Person} prefers concise thinking")
def step_prefers_concise(context, name):
    context.world.person(name).preferences.update({"thinking_style": "concise"})


@then("{name:Person}'s thoughts are one sentence each and marked as concise")
async def step_concise(context, name):
    await thinking.concise(context, name)


@then("{name:Person}'s thoughts are the full text")
async def step_full_text(context, name):
    await thinking.full_text(context, name)
