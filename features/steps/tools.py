"""Steps about tool calls announced and ended: the tool_executing scenarios (T041-T060).

The scripted behaviours of the tool scenarios and these checks are in
agentevents.testing.behaviours.tools; the checks of results are in
agentevents.testing.behaviours.tools_results (their steps in tools_results.py), the shared reading
helpers in agentevents.testing.toolcalls. Every Then waits for the run's agent_completed (its
defined end) before it reads what the user received.
"""

from __future__ import annotations

from behave import given, then, when

from agentevents.testing.behaviours import tools
from agentevents.testing.behaviours.tools import tool
from agentevents.testing.parse_types import register_all
from agentevents.testing.scripts import steps

register_all()


# -- Given / When -----------------------------------------------------------------------------

@given("a weather service answers on a loopback port")
async def step_weather_service(context):
    await tools.start_weather_service(context)


@when("{name:Person} has an agent fetch the forecast from the weather service")
async def step_fetch_forecast(context, name):
    service = context.world.notes["weather_service"]
    options = steps(tool("http_api", {"path": "/forecast"}, purpose="get the forecast"),
                    http_api_base_url=service.base_url)
    await context.world.start(name, "scripted", "fetch the forecast", options=options)


@when("{name:Person} starts an agent whose HTTP tool {she:Pronoun} points at a service of "
      "{her:Possessive} own choosing")
async def step_http_own_address(context, name, she, her):
    await tools.point_http_tool_at_own_service(context, name)


@when("{name:Person} approves the payment when the agent asks for it")
async def step_approve(context, name):
    await tools.approve_payment(context, name)


# -- Then: announcements (tool_executing) -----------------------------------------------------

@then("{name:Person} sees the {tool_name:Tool} announced in the {category} category with its purpose")
async def step_announced_category(context, name, tool_name, category):
    await tools.announced_in_category(context, name, tool_name, category)


@then('{name:Person} sees the {tool_name:Tool} announced with the {param:w} "{value}"')
async def step_announced_param(context, name, tool_name, param, value):
    await tools.announced_with_param(context, name, tool_name, param, value)


@then('{name:Person} sees the {tool_name:Tool} announced for the purpose "{purpose}"')
async def step_announced_purpose(context, name, tool_name, purpose):
    await tools.announced_for_purpose(context, name, tool_name, purpose)


@then("{name:Person} sees the agent's query in the sql_query announcement")
async def step_sql_shown(context, name):
    await tools.sql_query_shown(context, name)


@then("{name:Person} sees the search query with the email and card number redacted")
async def step_search_redacted(context, name):
    await tools.search_query_redacted(context, name)


@then('nothing {name:Person} received shows "{text}"')
async def step_never_shows(context, name, text):
    await tools.never_shows(context, name, text)


@then("nothing {name:Person} received shows the email or the card number")
async def step_never_shows_pii(context, name):
    await tools.never_shows_pii(context, name)


@then("{name:Person} sees the tools {tool_list} announced in that order")
async def step_tools_in_order(context, name, tool_list):
    await tools.announced_in_order(context, name, tool_list)


@then("each of {name:Person}'s tool calls completes before the next one is announced")
async def step_sequential(context, name):
    await tools.one_after_another(context, name)


@then("{name:Person} sees all {n:d} tool calls announced before any slow one completes")
async def step_parallel_announced(context, name, n):
    await tools.all_announced_before_a_slow_one_ends(context, name, n)


@then("{name:Person}'s {n:d} tool calls have distinct call ids")
async def step_distinct_ids(context, name, n):
    await tools.distinct_call_ids(context, name, n)


@then("{name:Person}'s run takes less than the sum of its tool durations")
async def step_faster_than_sum(context, name):
    await tools.faster_than_their_sum(context, name)


@then("{name:Person} receives each tool announcement within {limit:Duration} of its timestamp")
async def step_announcement_latency(context, name, limit):
    await tools.announcements_within(context, name, limit)


@then("{name:Person} receives no tool events in the run")
async def step_no_tools(context, name):
    await tools.no_tool_events(context, name)


@then("{name:Person}'s run reports {n:d} tool calls")
async def step_reports_calls(context, name, n):
    await tools.reports_tool_calls(context, name, n)


@then("{name:Person}'s {tool_name:Tool} completion lists its processing steps")
async def step_processing_steps(context, name, tool_name):
    await tools.lists_processing_steps(context, name, tool_name)


@then("{name:Person}'s process_file call reports {rows:d} rows and its processing steps")
async def step_file_rows(context, name, rows):
    await tools.file_rows_and_steps(context, name, rows)


@then("{name:Person}'s own service was never contacted")
async def step_own_service_untouched(context, name):
    await tools.own_service_never_contacted(context, name)


@then("{name:Person}'s http_api call names the weather service by host and port")
async def step_service_named(context, name):
    await tools.names_the_weather_service(context, name)


@then("{name:Person}'s http_api call returns the weather service's answer")
async def step_service_answer(context, name):
    await tools.returns_the_forecast(context, name)


@then("{name:Person}'s sql_query call returns the columns {columns} and the first {n:d} customers")
async def step_sql_rows(context, name, columns, n):
    await tools.returns_first_customers(context, name, columns, n)


@then("{name:Person}'s {tool_name:Tool} call is marked as a custom tool")
async def step_custom(context, name, tool_name):
    await tools.marked_custom(context, name, tool_name)


# -- Then: how calls end (status, error code, timing) -----------------------------------------

@then("{name:Person}'s {which:ToolCall} call succeeds with the result {value:Number}")
async def step_succeeds_with(context, name, which, value):
    await tools.succeeds_with(context, name, which, value)


@then('{name:Person}\'s {which:ToolCall} call succeeds with the result "{text}"')
async def step_succeeds_with_text(context, name, which, text):
    await tools.succeeds_with(context, name, which, text)


@then('{name:Person}\'s {which:ToolCall} call ends with status {status:ToolStatus} and the code "{code}"')
async def step_ends_with_code(context, name, which, status, code):
    await tools.ends_with_code(context, name, which, status, code)


@then('{name:Person}\'s {which:ToolCall} call ends with status {status:ToolStatus} naming "{text}"')
async def step_ends_naming(context, name, which, status, text):
    await tools.ends_naming(context, name, which, status, text)


@then("{name:Person}'s {which:ToolCall} call ends with status {status:ToolStatus} within {limit:Duration} "
      "of its announcement")
async def step_ends_promptly(context, name, which, status, limit):
    await tools.ends_promptly(context, name, which, status, limit)


@then("afterwards {name:Person} sees the {tool_name:Tool} tool succeed")
async def step_afterwards_succeeds(context, name, tool_name):
    await tools.succeeds_after_the_failure(context, name, tool_name)


@then("{name:Person} receives no database rows")
async def step_no_rows(context, name):
    await tools.no_database_rows(context, name)


@then("{name:Person}'s first {n:d} calculator calls succeed and later ones end with status rate_limited "
      "and a time to retry")
async def step_rate_limited(context, name, n):
    await tools.rate_limited_after(context, name, n)


@then("{name:Person} receives a slow notice for the {tool_name:Tool} call between its announcement and its "
      "completion")
async def step_slow_notice(context, name, tool_name):
    await tools.slow_notice_in_between(context, name, tool_name)
