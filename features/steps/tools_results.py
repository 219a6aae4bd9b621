"""Steps about tool results: the tool_completed scenarios (T061-T080).

The checks are in agentevents.testing.behaviours.tools_results, the scripted behaviours these
scenarios use in agentevents.testing.behaviours.tools, the shared reading helpers in
agentevents.testing.toolcalls. Every Then waits for the run's agent_completed.
"""

from __future__ import annotations

from behave import then

from agentevents.testing.behaviours import tools_results
from agentevents.testing.parse_types import register_all

register_all()


@then("{name:Person}'s {tool_name:Tool} completion has its name, call id, status, result, duration, metadata and "
      "tool version")
async def step_completion_fields(context, name, tool_name):
    await tools_results.has_every_field(context, name, tool_name)


@then("{name:Person}'s tool events validate against the published schemas")
async def step_tool_schemas(context, name):
    await tools_results.tool_events_match_schemas(context, name)


@then("every tool call {name:Person} saw announced completes exactly once, afterwards, with the same call id")
async def step_pairing(context, name):
    await tools_results.each_call_completes_once(context, name)


@then("{name:Person}'s {tool_name:Tool} call reports a duration between {low:d} and {high:d} ms that agrees with "
      "its event times")
async def step_duration(context, name, tool_name, low, high):
    await tools_results.duration_agrees(context, name, tool_name, low, high)


@then("{name:Person} receives the first figures of the file, and how many there are in all")
async def step_summarized(context, name):
    await tools_results.head_of_the_file_and_its_count(context, name)


@then("the file's result reaches {name:Person} in a message small enough for a chat screen")
async def step_frame_size(context, name):
    await tools_results.file_result_fits_a_chat_message(context, name)


@then("{name:Person}'s {which:ToolCall} call succeeds with an empty result and no error")
async def step_empty(context, name, which):
    await tools_results.empty_result_without_error(context, name, which)


@then("{name:Person} receives {n:d} progress updates with partial results, in order, before the {tool_name:Tool} "
      "completes")
async def step_batch_progress(context, name, n, tool_name):
    await tools_results.progress_in_order(context, name, n, tool_name)


@then("{name:Person}'s tool result says it is in the {expected} format")
async def step_format(context, name, expected):
    await tools_results.in_the_format(context, name, expected)


@then("{name:Person}'s search results carry a confidence between 0 and 1")
async def step_confidence(context, name):
    await tools_results.search_confidence(context, name)


@then("{name:Person}'s search call cites its corpus sources")
async def step_tool_sources(context, name):
    await tools_results.search_cites_corpus(context, name)


@then("{name:Person}'s final result cites the same sources")
async def step_final_sources(context, name):
    await tools_results.final_cites_the_search_sources(context, name)


@then("{name:Person}'s {tool_name:Tool} result shows the email and card number redacted")
async def step_result_redacted(context, name, tool_name):
    await tools_results.result_redacted(context, name, tool_name)


@then("{name:Person}'s first {tool_name:Tool} call is not from the cache and the second is, with the same result")
async def step_cached(context, name, tool_name):
    await tools_results.second_call_cached(context, name, tool_name)


@then("every tool completion {name:Person} received names its tool version")
async def step_versions(context, name):
    await tools_results.name_their_tool_versions(context, name)


@then("{name:Person}'s repeated {tool_name:Tool} calls have result versions {versions}")
async def step_result_versions(context, name, tool_name, versions):
    await tools_results.result_versions(context, name, tool_name, versions)


@then("{name:Person}'s {tool_name:Tool} call names the {source:Tool} call it continues")
async def step_chained(context, name, tool_name, source):
    await tools_results.names_the_call_it_continues(context, name, tool_name, source)


@then("{name:Person}'s {tool_name:Tool} call's {param:w} is the {source:Tool}'s result")
async def step_chained_param(context, name, tool_name, param, source):
    await tools_results.param_is_the_earlier_result(context, name, tool_name, param, source)


@then("{name:Person}'s tool completions carry the agent's recommended next steps")
async def step_tool_follow_up(context, name):
    await tools_results.tools_recommend_next_steps(context, name)


@then("{name:Person}'s final result carries recommended next steps")
async def step_final_follow_up(context, name):
    await tools_results.run_recommends_next_steps(context, name)


@then("{name:Person} sees the approval request, {her:Possessive} answer accepted, and only then "
      "the payment tool's events")
async def step_after_approval(context, name, her):
    await tools_results.payment_only_after_approval(context, name)


@then("{name:Person} receives {n:d} tool completions, each matching one of the {m:d} calls, before the run completes")
async def step_n_completions(context, name, n, m):
    await tools_results.completions_match_parallel_calls(context, name, n, m)


@then("{name:Person} sees the reservation undone with status rolled_back, naming the call it compensates")
async def step_rolled_back(context, name):
    await tools_results.reservation_undone(context, name)


@then("{name:Person} sees that the failed payment is not rolled back")
async def step_not_rolled_back(context, name):
    await tools_results.failed_payment_not_rolled_back(context, name)


@then("every tool completion {name:Person} received is in the audit log with {her:Possessive} user and connection")
async def step_audit(context, name, her):
    await tools_results.completions_audited(context, name)
