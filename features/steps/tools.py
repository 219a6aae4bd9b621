"""Steps about tool calls announced and ended: the tool_executing scenarios (T041-T060).

The scripted agents' behaviours for the tool scenarios (tool_executing.feature and
tool_completed.feature) are registered here as phrases. Every Then waits for the run's
agent_completed (its defined end) before it reads what the user received; the checks of
results live in tools_results.py, the shared reading helpers in agentevents.testing.toolcalls.
"""

from __future__ import annotations

from behave import given, then, when

from agentevents.testing.behaviours.tools import tool
from agentevents.testing.figures import record_figure
from agentevents.testing.httpd import JsonService
from agentevents.testing.matchers import timestamp
from agentevents.testing.measures import human
from agentevents.testing.parse_types import register_all
from agentevents.testing.scripts import steps
from agentevents.testing.steps_support import answer_approval, approval_id
from agentevents.testing.toolcalls import (
    CARD,
    EMAIL,
    NOTE_EMAIL,
    SQL_FIRST_CUSTOMERS,
    WEATHER,
    calls_of,
    completion,
    data,
    defined_end,
    fail,
    raw_of,
    the_call,
)

register_all()


# -- Given / When -----------------------------------------------------------------------------
@given("a weather service answers on a loopback port")
async def step_weather_service(context):
    service = await JsonService({"/forecast": WEATHER}).start()
    context.world.closers.append(service.close)
    context.world.notes["weather_service"] = service


@when("{name:Person} has an agent fetch the forecast from the weather service")
async def step_fetch_forecast(context, name):
    service = context.world.notes["weather_service"]
    options = steps(tool("http_api", {"path": "/forecast"}, purpose="get the forecast"),
                    http_api_base_url=service.base_url)
    await context.world.start(name, "scripted", "fetch the forecast", options=options)


@when("{name:Person} approves the payment when the agent asks for it")
async def step_approve(context, name):
    run = context.world.last_run(name)
    ask, answer = await answer_approval(run, True, "the approval was not accepted")
    # When the respond left the client: nothing the approval unlocks may arrive before it.
    context.world.notes["approval"] = {"approval_id": approval_id(ask), "asked": ask,
                                       "sent_at": run.client.sent_at[answer.data["request_id"]]}


# -- Then: announcements (tool_executing) -----------------------------------------------------
@then("{name:Person} sees the {tool_name:Tool} announced in the {category} category with its purpose")
async def step_announced_category(context, name, tool_name, category):
    _run, _end, events = await context.world.finished(name)
    call = the_call(events, (0, tool_name))
    d = data(call)
    if d.get("category") != category:
        raise fail(f"{tool_name} is announced in category {d.get('category')!r}, not {category!r}", events)
    for key in ("purpose", "description"):
        if not isinstance(d.get(key), str) or not d[key].strip():
            raise fail(f"{tool_name}'s announcement has no {key}: {d.get(key)!r}", events)
    if not isinstance(d.get("tool_call_id"), str) or not d["tool_call_id"]:
        raise fail(f"{tool_name}'s announcement has no tool_call_id", events)


@then('{name:Person} sees the {tool_name:Tool} announced with the {param:w} "{value}"')
async def step_announced_param(context, name, tool_name, param, value):
    _run, _end, events = await context.world.finished(name)
    call = the_call(events, (0, tool_name))
    shown = data(call).get("parameters", {}).get(param)
    if shown != value:
        raise fail(f"{tool_name}'s announced {param} is {shown!r}, expected {value!r}", events)


@then('{name:Person} sees the {tool_name:Tool} announced for the purpose "{purpose}"')
async def step_announced_purpose(context, name, tool_name, purpose):
    _run, _end, events = await context.world.finished(name)
    call = the_call(events, (0, tool_name))
    if data(call).get("purpose") != purpose:
        raise fail(f"{tool_name}'s purpose is {data(call).get('purpose')!r}, expected {purpose!r}", events)


@then("{name:Person} sees the agent's query in the sql_query announcement")
async def step_sql_shown(context, name):
    _run, _end, events = await context.world.finished(name)
    call = the_call(events, (0, "sql_query"))
    if data(call).get("parameters", {}).get("query") != SQL_FIRST_CUSTOMERS:
        raise fail(f"the announced query is {data(call).get('parameters')!r}, expected "
                   f"{SQL_FIRST_CUSTOMERS!r}", events)


@then("{name:Person} sees the search query with the email and card number redacted")
async def step_search_redacted(context, name):
    _run, _end, events = await context.world.finished(name)
    call = the_call(events, (0, "search"))
    query = data(call).get("parameters", {}).get("query")
    expected = "orders of [REDACTED:email] paid with card [REDACTED:card]"
    if query != expected:
        raise fail(f"the announced search query is {query!r}, expected {expected!r}", events)
    if not isinstance(data(call).get("redactions"), int) or data(call)["redactions"] < 2:
        raise fail(f"the search announcement does not count its redactions: {data(call).get('redactions')!r}",
                   events)


@then('nothing {name:Person} received shows "{text}"')
async def step_never_shows(context, name, text):
    await context.world.finished(name)
    await defined_end(context, name)
    leaks = [f for f in raw_of(context, name) if text in f.raw]
    if leaks:
        raise fail(f"{len(leaks)} message(s) show {text!r}", leaks)


@then("nothing {name:Person} received shows the email or the card number")
async def step_never_shows_pii(context, name):
    await context.world.finished(name)
    await defined_end(context, name)
    digits = CARD.replace(" ", "")
    leaks = [f for f in raw_of(context, name)
             if EMAIL in f.raw or NOTE_EMAIL in f.raw or CARD in f.raw or digits in f.raw]
    if leaks:
        raise fail(f"{len(leaks)} message(s) show the email or the card number", leaks)


@then("{name:Person} sees the tools {tool_list} announced in that order")
async def step_tools_in_order(context, name, tool_list):
    _run, _end, events = await context.world.finished(name)
    expected = [t.strip() for t in tool_list.replace(" and ", ", ").split(",")]
    got = [data(f).get("tool_name") for f in calls_of(events)]
    if got != expected:
        raise fail(f"tools announced {got}, expected {expected}", events)


@then("each of {name:Person}'s tool calls completes before the next one is announced")
async def step_sequential(context, name):
    _run, _end, events = await context.world.finished(name)
    calls = calls_of(events)
    if len(calls) < 2:
        raise fail(f"only {len(calls)} tool call(s)", events)
    for call, following in zip(calls, calls[1:] + [None], strict=True):
        done = completion(events, call)
        if done.index < call.index:
            raise fail(f"{data(call)['tool_name']} completed before it was announced", events)
        if following is not None and done.index > following.index:
            raise fail(f"{data(following)['tool_name']} was announced before {data(call)['tool_name']} completed",
                       events)
        if following is not None and data(done).get("status") != "success":
            raise fail(f"{data(call)['tool_name']} ended {data(done).get('status')!r}", events)


@then("{name:Person} sees all {n:d} tool calls announced before any slow one completes")
async def step_parallel_announced(context, name, n):
    _run, _end, events = await context.world.finished(name)
    calls = calls_of(events)
    if len(calls) != n:
        raise fail(f"{len(calls)} tool calls announced, expected {n}", events)
    slow = [completion(events, c) for c in calls if data(c).get("tool_name") == "wait"]
    if not slow:
        raise fail("no slow tool call", events)
    first_slow_done = min(f.index for f in slow)
    late = [c for c in calls if c.index > first_slow_done]
    if late:
        raise fail(f"{len(late)} call(s) announced only after a slow call completed", events)


@then("{name:Person}'s {n:d} tool calls have distinct call ids")
async def step_distinct_ids(context, name, n):
    _run, _end, events = await context.world.finished(name)
    ids = [data(c).get("tool_call_id") for c in calls_of(events)]
    if len(ids) != n or len(set(ids)) != n or not all(ids):
        raise fail(f"call ids {ids}: expected {n} distinct ids", events)
    for call in calls_of(events):
        completion(events, call)


@then("{name:Person}'s run takes less than the sum of its tool durations")
async def step_faster_than_sum(context, name):
    _run, end, events = await context.world.finished(name)
    calls = calls_of(events)
    done = [completion(events, c) for c in calls]
    total = sum(data(f)["duration_ms"] for f in done)
    span_ms = (max(f.at for f in done) - min(c.at for c in calls)) * 1000
    run_ms = data(end).get("duration_ms")
    record_figure(context, f"{len(calls)} tools in parallel took {span_ms:.0f} ms as {name} saw them (the run "
                           f"{run_ms} ms), against {total} ms one after another")
    if not span_ms < total:
        raise fail(f"the tools took {span_ms:.0f} ms end to end, not less than the sum {total} ms", events)
    if not isinstance(run_ms, int) or not run_ms < total:
        raise fail(f"the run reports {run_ms!r} ms, not less than the sum of its tools {total} ms", events)


@then("{name:Person} receives each tool announcement within {limit:Duration} of its timestamp")
async def step_announcement_latency(context, name, limit):
    _run, _end, events = await context.world.finished(name)
    calls = calls_of(events)
    if not calls:
        raise fail("no tool announcement", events)
    delays = [f.wall - timestamp(f).timestamp() for f in calls]
    worst = max(delays)
    record_figure(context, f"slowest tool announcement reached {name} {human(worst)} after it was made (mean "
                           f"{human(sum(delays) / len(delays))}, {len(delays)} announcements) — limit {human(limit)}")
    if worst > limit:
        raise fail(f"a tool announcement arrived {worst * 1000:.1f} ms after its timestamp", events)


@then("{name:Person} receives no tool events in the run")
async def step_no_tools(context, name):
    run, _end, events = await context.world.finished(name)
    await defined_end(context, name)
    tools = [f for f in run.client.events(run_id=run.run_id)
             if f.type in ("tool_executing", "tool_progress", "tool_completed")]
    if tools:
        raise fail(f"{len(tools)} tool event(s) in a run that uses no tool", tools)
    if [f.type for f in events][:1] != ["agent_started"]:
        raise fail("the run did not start as expected", events)


@then("{name:Person}'s run reports {n:d} tool calls")
async def step_reports_calls(context, name, n):
    _run, end, events = await context.world.finished(name)
    d = data(end)
    reported = (d.get("tool_calls"), (d.get("metrics") or {}).get("tool_calls"))
    received = len(calls_of(events))
    if reported != (n, n) or received != n:
        raise fail(f"the completion reports {reported[0]!r} tool calls (metrics {reported[1]!r}); "
                   f"{received} were received; expected {n}", events)


@then("{name:Person}'s {tool_name:Tool} completion lists its processing steps")
async def step_processing_steps(context, name, tool_name):
    _run, _end, events = await context.world.finished(name)
    call = the_call(events, (0, tool_name))
    done = completion(events, call)
    progress = data(done).get("metadata", {}).get("progress")
    if not isinstance(progress, list) or len(progress) < 2 or not all(isinstance(s, str) and s for s in progress):
        raise fail(f"{tool_name}'s completion lists no processing steps: {progress!r}", events)
    dataset = data(call).get("parameters", {}).get("dataset")
    if dataset and not any(dataset in s for s in progress):
        raise fail(f"no processing step mentions the dataset {dataset!r}: {progress}", events)


@then("{name:Person}'s process_file call reports {rows:d} rows and its processing steps")
async def step_file_rows(context, name, rows):
    _run, _end, events = await context.world.finished(name)
    call = the_call(events, (0, "process_file"))
    d = data(completion(events, call))
    file_name = data(call).get("parameters", {}).get("file")
    progress = d.get("metadata", {}).get("progress") or []
    if d.get("status") != "success" or (d.get("result") or {}).get("rows") != rows:
        raise fail(f"process_file ended {d.get('status')!r} with {d.get('result')!r}; expected {rows} rows", events)
    if d.get("metadata", {}).get("file") != file_name or not any(file_name in step for step in progress) \
            or not any(f"parsed {rows} rows" in step for step in progress):
        raise fail(f"the processing steps do not name {file_name!r} and its {rows} rows: {progress}", events)


@then("{name:Person}'s http_api call names the weather service by host and port")
async def step_service_named(context, name):
    _run, _end, events = await context.world.finished(name)
    service = context.world.notes["weather_service"]
    d = data(completion(events, the_call(events, (0, "http_api"))))
    named = d.get("metadata", {}).get("service")
    if named != f"127.0.0.1:{service.port}":
        raise fail(f"the http_api result names {named!r}, not 127.0.0.1:{service.port}", events)


@then("{name:Person}'s http_api call returns the weather service's answer")
async def step_service_answer(context, name):
    _run, _end, events = await context.world.finished(name)
    service = context.world.notes["weather_service"]
    d = data(completion(events, the_call(events, (0, "http_api"))))
    if d.get("status") != "success" or d.get("result") != {"status": 200, "body": WEATHER}:
        raise fail(f"http_api ended {d.get('status')!r} with {d.get('result')!r}", events)
    if service.requests != [("GET", "/forecast")]:
        raise fail(f"the weather service received {service.requests}", events)


@then("{name:Person}'s sql_query call returns the columns {columns} and the first {n:d} customers")
async def step_sql_rows(context, name, columns, n):
    _run, _end, events = await context.world.finished(name)
    d = data(completion(events, the_call(events, (0, "sql_query"))))
    result = d.get("result") or {}
    expected_columns = [c.strip() for c in columns.split(",")]
    rows = result.get("rows")
    if d.get("status") != "success" or result.get("columns") != expected_columns:
        raise fail(f"sql_query ended {d.get('status')!r} with columns {result.get('columns')!r}", events)
    if not isinstance(rows, list) or [r[0] for r in rows] != list(range(1, n + 1)) \
            or rows[0] != [1, "Ada Lovelace", "US"] or d.get("metadata", {}).get("row_count") != n:
        raise fail(f"sql_query returned rows {rows!r}", events)


@then("{name:Person}'s {tool_name:Tool} call is marked as a custom tool")
async def step_custom(context, name, tool_name):
    _run, _end, events = await context.world.finished(name)
    call = the_call(events, (0, tool_name))
    d = data(completion(events, call))
    meta = d.get("metadata", {})
    if not tool_name.startswith("custom.") or meta.get("custom") is not True or meta.get("definition") != tool_name:
        raise fail(f"{tool_name}'s result metadata is {meta!r}", events)


# -- Then: how calls end (status, error code, timing) -----------------------------------------
@then("{name:Person}'s {which:ToolCall} call succeeds with the result {value:Number}")
async def step_succeeds_with(context, name, which, value):
    _run, _end, events = await context.world.finished(name)
    done = completion(events, the_call(events, which))
    d = data(done)
    if d.get("status") != "success" or d.get("result") != value or "error" in d:
        raise fail(f"{which[1]} ended {d.get('status')!r} with {d.get('result')!r}, expected success with "
                   f"{value!r}", events)


@then('{name:Person}\'s {which:ToolCall} call succeeds with the result "{text}"')
async def step_succeeds_with_text(context, name, which, text):
    _run, _end, events = await context.world.finished(name)
    d = data(completion(events, the_call(events, which)))
    if d.get("status") != "success" or d.get("result") != text or "error" in d:
        raise fail(f"{which[1]} ended {d.get('status')!r} with {d.get('result')!r}, expected {text!r}", events)


@then('{name:Person}\'s {which:ToolCall} call ends with status {status:ToolStatus} and the code "{code}"')
async def step_ends_with_code(context, name, which, status, code):
    _run, _end, events = await context.world.finished(name)
    done = completion(events, the_call(events, which))
    d = data(done)
    if d.get("status") != status or (d.get("error") or {}).get("code") != code:
        raise fail(f"{which[1]} ended {d.get('status')!r} with error {d.get('error')!r}; expected {status} "
                   f"with code {code!r}", events)
    if d.get("result") is not None:
        raise fail(f"a failed {which[1]} call still carries a result: {d.get('result')!r}", events)


@then('{name:Person}\'s {which:ToolCall} call ends with status {status:ToolStatus} naming "{text}"')
async def step_ends_naming(context, name, which, status, text):
    _run, _end, events = await context.world.finished(name)
    done = completion(events, the_call(events, which))
    d = data(done)
    error = d.get("error") or {}
    if d.get("status") != status or error.get("code") != status:
        raise fail(f"{which[1]} ended {d.get('status')!r} with error {error!r}; expected {status}", events)
    if text not in str(error.get("message", "")):
        raise fail(f"the {status} message does not name {text!r}: {error.get('message')!r}", events)


@then("{name:Person}'s {which:ToolCall} call ends with status {status:ToolStatus} within {limit:Duration} "
      "of its announcement")
async def step_ends_promptly(context, name, which, status, limit):
    _run, _end, events = await context.world.finished(name)
    call = the_call(events, which)
    done = completion(events, call)
    elapsed = done.at - call.at
    record_figure(context, f"{which[1]} call ended {data(done).get('status')} {human(elapsed)} after its "
                           f"announcement (it reports {data(done).get('duration_ms')} ms) — limit {human(limit)}")
    if data(done).get("status") != status:
        raise fail(f"{which[1]} ended {data(done).get('status')!r}, expected {status}", events)
    if (data(done).get("error") or {}).get("code") is None:
        raise fail(f"the {status} completion carries no error code", events)
    if elapsed > limit:
        raise fail(f"{which[1]} ended {elapsed * 1000:.0f} ms after its announcement; the limit is "
                   f"{limit * 1000:.0f} ms", events)


@then("afterwards {name:Person} sees the {tool_name:Tool} tool succeed")
async def step_afterwards_succeeds(context, name, tool_name):
    _run, _end, events = await context.world.finished(name)
    failures = [f for f in events if f.type == "tool_completed" and data(f).get("status") != "success"]
    if not failures:
        raise fail("no tool call failed before", events)
    later = [c for c in calls_of(events, tool_name) if c.index > failures[0].index]
    if not later:
        raise fail(f"no {tool_name} call after the failed call", events)
    done = completion(events, later[0])
    if data(done).get("status") != "success":
        raise fail(f"the {tool_name} call after the failure ended {data(done).get('status')!r}", events)


@then("{name:Person} receives no database rows")
async def step_no_rows(context, name):
    _run, _end, events = await context.world.finished(name)
    await defined_end(context, name)
    for call in calls_of(events, "sql_query"):
        if data(completion(events, call)).get("result") is not None:
            raise fail("a sql_query completion carries rows", events)
    leaks = [f for f in raw_of(context, name) if "Lovelace" in f.raw or "[REDACTED:email]" in f.raw]
    if leaks:
        raise fail("a message carries customer rows from the database", leaks)


@then("{name:Person}'s first {n:d} calculator calls succeed and later ones end with status rate_limited "
      "and a time to retry")
async def step_rate_limited(context, name, n):
    _run, _end, events = await context.world.finished(name)
    calls = calls_of(events, "calculator")
    statuses = [data(completion(events, c)).get("status") for c in calls]
    if statuses[:n] != ["success"] * n:
        raise fail(f"the first {n} calls ended {statuses[:n]}", events)
    limited = [completion(events, c) for c in calls[n:]]
    limited = [f for f in limited if data(f).get("status") == "rate_limited"]
    if not limited:
        raise fail(f"no call after the first {n} was rate limited: {statuses}", events)
    for f in limited:
        retry = (data(f).get("error") or {}).get("retry_after_ms")
        if not isinstance(retry, int) or not 0 < retry <= 1000:
            raise fail(f"a rate_limited completion has retry_after_ms {retry!r}", events)
    record_figure(context, f"{statuses.count('success')} of {len(calls)} calculator calls succeeded, "
                           f"{len(limited)} were told to retry later")


@then("{name:Person} receives a slow notice for the {tool_name:Tool} call between its announcement and its "
      "completion")
async def step_slow_notice(context, name, tool_name):
    _run, _end, events = await context.world.finished(name)
    call = the_call(events, (0, tool_name))
    done = completion(events, call)
    notices = [f for f in events if f.type == "tool_progress" and data(f).get("status") == "slow"
               and data(f).get("tool_call_id") == data(call).get("tool_call_id")]
    if len(notices) != 1:
        raise fail(f"{len(notices)} slow notices for the {tool_name} call, expected one", events)
    notice = notices[0]
    if not call.index < notice.index < done.index:
        raise fail("the slow notice is not between the announcement and the completion", events)
    d = data(notice)
    if not (isinstance(d.get("elapsed_ms"), int) and isinstance(d.get("expected_ms"), int)
            and d["elapsed_ms"] >= d["expected_ms"] > 0 and d.get("message")):
        raise fail(f"the slow notice does not say how long the tool has taken: {d}", events)
    record_figure(context, f"{name} was told the {tool_name} call is slow after {d['elapsed_ms']} ms "
                           f"(usual: {d['expected_ms']} ms); it ended after {data(done).get('duration_ms')} ms")
