"""Steps about how runs end: agent_completed's status, result, summary, counts and extras
(plan tests T081-T100). The checks are in agentevents.testing.behaviours.completion."""

from __future__ import annotations

from behave import given, then, when

from agentevents.testing.behaviours import completion
from agentevents.testing.parse_types import register_all
from agentevents.testing.scripts import script_for
from agentevents.testing.steps_support import runs_ended

register_all()


# -- given / when ----------------------------------------------------------------------------

@given("{name:Person} prefers brief summaries")
def step_prefers_brief(context, name):
    context.world.person(name).preferences.update({"summary_style": "brief"})


@when("{name:Person} starts as many agents at once as {her:Possessive} tier allows, that each {behaviour}")
async def step_start_many(context, name, her, behaviour):
    await completion.start_allowed_batch(context, name, behaviour, script_for(behaviour))


@when("{name:Person} tries to start one more agent while those are still going")
async def step_one_more(context, name):
    await completion.start_one_more(context, name, script_for("works quietly for 0.2 seconds"))


@when("all of {name:Person}'s runs have finished")
async def step_all_finished(context, name):
    await runs_ended(context.world.runs_of(name))


@when("{name:Person}'s run has finished")
async def step_run_finished(context, name):
    await context.world.finished(name)


@when("{name:Person} {approved:Answer} the agent's request once it has waited for {her:Possessive} answer")
async def step_answer_after_wait(context, name, approved, her):
    await completion.answer_after_wait(context, name, approved)


@when('{name:Person} asks the data analyst "{message}" while the database is paused')
async def step_analyst_without_database(context, name, message):
    await completion.ask_analyst_without_database(context, name, message)


# -- then ------------------------------------------------------------------------------------

@then("the summary of {name:Person}'s completion names the calculation {she:Pronoun} saw and its answer {value:d}")
async def step_summary_describes(context, name, she, value):
    await completion.summary_names_calculation(context, name, value)


@then("{name:Person}'s completion counts exactly the tool calls and events that reached {her:Objective}")
async def step_counts_match(context, name, her):
    await completion.counts_what_arrived(context, name)


@then('{name:Person}\'s research answer mentions "{text}"')
async def step_answer_mentions(context, name, text):
    await completion.answer_mentions(context, name, text)


@then("{name:Person}'s completion cites the knowledge-base sources {her:Possessive} search found")
async def step_cites_sources(context, name, her):
    await completion.cites_found_sources(context, name)


@then("{name:Person}'s completion suggests what to do next")
async def step_follow_up(context, name):
    await completion.suggests_next_steps(context, name)


@then("{name:Person}'s completion suggests starting the {agent:Agent} agent next")
async def step_follow_up_agent(context, name, agent):
    await completion.suggests_agent(context, name, agent)


@then("{name:Person}'s run reports a duration of at least {minimum:Duration}, within {tolerance:Duration} "
      "of the time between its first and last event")
async def step_duration(context, name, minimum, tolerance):
    await completion.duration_matches_events(context, name, minimum, tolerance)


@then("the extra agent was refused because {name:Person} already had as many runs going as {her:Possessive} "
      "tier allows")
async def step_run_limit(context, name, her):
    await completion.one_more_refused(context, name)


@then("all of {name:Person}'s new runs are accepted and complete")
async def step_new_runs(context, name):
    await completion.new_batch_completes(context, name)


@then("{name:Person}'s completion explains that no source was found")
async def step_no_source(context, name):
    await completion.explains_no_source(context, name)


@then("{name:Person}'s runs in the conversation complete as iterations 1 and 2")
async def step_iterations(context, name):
    await completion.iterations_one_and_two(context, name)


@then("{name:Person}'s completion lists {names} as contributors")
async def step_contributors(context, name, names):
    await completion.lists_contributors(context, name, names)


@then("every contributor authored events {name:Person} received, and no one else did")
async def step_contributors_authored(context, name):
    await completion.contributors_authored(context, name)


@then("{name:Person}'s completion assesses its quality with a confidence between 0 and 1 and a method")
async def step_quality(context, name):
    await completion.assesses_quality(context, name)


@then("{name:Person}'s summary is one sentence, personalised for {her:Possessive} summary style")
async def step_brief_summary(context, name, her):
    await completion.brief_summary(context, name)


@then("{name:Person}'s summary is the agent's full summary, not personalised")
async def step_full_summary(context, name):
    await completion.full_summary(context, name)


@then("{name:Person}'s completion records what was learned from its best source")
async def step_learnings(context, name):
    await completion.learned_from_best_source(context, name)


@then("the metrics in {name:Person}'s completion equal the events, tool calls and time {she:Pronoun} received")
async def step_metrics(context, name, she):
    await completion.metrics_match(context, name, she)


@then("the last event before {name:Person}'s completion is an error the run cannot recover from")
async def step_fatal_error(context, name):
    await completion.ends_with_fatal_error(context, name)


@then('{name:Person}\'s completion reports the error code "{code}" that {she:Pronoun} was shown')
async def step_error_code(context, name, code, she):
    await completion.reports_error_code(context, name, code)


@then("{name:Person}'s completion carries the partial result produced before the limit, promptly")
async def step_partial_result(context, name):
    await completion.partial_result_promptly(context, name)


@then("{name:Person}'s completion names the database as unavailable and keeps the rest of the analysis")
async def step_database_unavailable(context, name):
    await completion.database_unavailable(context, name)


@then("{name:Person}'s completion records the tool errors {she:Pronoun} saw as recovered from")
async def step_recovered(context, name, she):
    await completion.recovered_from_tool_errors(context, name)


@then("{name:Person} was asked for approval, and the agent waited for {her:Possessive} answer")
def step_asked(context, name, her):
    completion.asked_and_waited(context, name)


@then("{name:Person}'s completion lists the approval {she:Pronoun} gave")
async def step_approval_given(context, name, she):
    await completion.lists_approval(context, name, True)


@then("{name:Person}'s completion lists the approval {she:Pronoun} declined")
async def step_approval_declined(context, name, she):
    await completion.lists_approval(context, name, False)


@then("the agent did no work after {name:Person} answered")
async def step_no_work_after_decline(context, name):
    await completion.no_work_after_answer(context, name)


@then("the agent made the transfer after {name:Person} answered")
async def step_transfer_after_approval(context, name):
    await completion.transfer_after_approval(context, name)


@then("{name:Person} sees each booking undone, newest first, after the failed payment")
async def step_rolled_back(context, name):
    await completion.bookings_undone_newest_first(context, name)
