"""Steps about tool calls announced and ended: the tool_executing scenarios (T041-T060).

The scripted agents' behaviours for the tool scenarios (tool_executing.feature and
tool_completed.feature) are registered here as phrases. Every Then waits for the run's
agent_completed (its defined end) before it reads what the user received; the checks of
results live in tools_results.py, the shared reading helpers in agentevents.testing.toolcalls.
"""

from __future__ import annotations

from typing import Any

from behave import given, then, when

from agentevents.testing.figures import record_figure
from agentevents.testing.httpd import JsonService
from agentevents.testing.limits import LARGE_FILE_FIGURES
from agentevents.testing.matchers import timestamp
from agentevents.testing.measures import human
from agentevents.testing.parse_types import register_all
from agentevents.testing.scripts import complete, register, steps
from agentevents.testing.toolcalls import (
    CARD,
    EMAIL,
    LARGE_FIGURE,
    NOTE_EMAIL,
    PAY_CARD_PURPOSE,
    PAY_PURPOSE,
    RESERVE_PURPOSE,
    RUN_FOLLOW_UP,
    SQL_FIRST_CUSTOMERS,
    TOOL_FOLLOW_UP,
    WEATHER,
    calls_of,
    completion,
    data,
    defined_end,
    fail,
    raw_of,
    run_events,
    the_call,
)

register_all()


# -- what the scripted agents do --------------------------------------------------------------
def tool(name: str, params: dict[str, Any] | None = None, **more: Any) -> dict[str, Any]:
    return {"tool": name, "params": params or {}, **more}


def _calc_then_search_pii(expression: str) -> dict[str, Any]:
    return steps(tool("calculator", {"expression": expression}, purpose="check the order total"),
                 tool("search", {"query": f"orders of {EMAIL} paid with card {CARD}"},
                      purpose="find the customer's orders"))


def _three_in_sequence() -> dict[str, Any]:
    return steps(tool("calculator", {"expression": "12*(3+4)"}, purpose="price the order"),
                 tool("search", {"query": "compound interest"}, purpose="explain the interest rule"),
                 tool("finance", {"operation": "compound_interest", "principal": 1000, "rate": 0.05, "years": 10},
                      purpose="grow the savings"))


def _parallel_slow() -> dict[str, Any]:
    return steps({"parallel": [tool("wait", {"seconds": 1.0}), tool("wait", {"seconds": 1.0}),
                               tool("calculator", {"expression": "2+3"})]})


def _sums(n: int) -> dict[str, Any]:
    return steps(*(tool("calculator", {"expression": f"{i}+{i}"}) for i in range(1, n + 1)))


def _calc_for(expression: str, purpose: str) -> dict[str, Any]:
    return steps(tool("calculator", {"expression": expression}, purpose=purpose))


def _csv_rows(name: str, rows: int) -> dict[str, Any]:
    content = "region,amount\n" + "".join(f"region{i},{i * 10}\n" for i in range(1, rows + 1))
    return steps(tool("process_file", {"file": name}, purpose="read the attached figures"), files={name: content})


def _sql_first_customers() -> dict[str, Any]:
    return steps(tool("sql_query", {"query": SQL_FIRST_CUSTOMERS}, purpose="list the first customers"))


def _compound_interest(principal: int, rate: int, years: int) -> dict[str, Any]:
    return steps(tool("finance", {"operation": "compound_interest", "principal": principal, "rate": rate / 100,
                                  "years": years}, purpose="project the savings"))


GREETING_TOOL = {"name": "custom.greet", "description": "Greets a person by name",
                 "parameters": {"type": "object", "properties": {"who": {"type": "string"}}, "required": ["who"]},
                 "template": "Hello, {who}!"}
DISCOUNT_TOOL = {"name": "custom.discount", "description": "Price after a 10% discount",
                 "parameters": {"type": "object", "properties": {"price": {"type": "number"}},
                                "required": ["price"]},
                 "expression": "{price} * 0.9", "result_schema": {"type": "number", "minimum": 0}}


def _greeting() -> dict[str, Any]:
    return steps(tool("custom.greet", {"who": "Ada"}, purpose="greet the new customer"),
                 custom_tools=[GREETING_TOOL])


def _discount() -> dict[str, Any]:
    return steps(tool("custom.discount", {"price": 100}), tool("custom.discount", {"price": -50}),
                 custom_tools=[DISCOUNT_TOOL])


def _failing_then_calculator() -> dict[str, Any]:
    return steps(tool("fail", {"code": "upstream_unavailable", "message": "the pricing service is down"}),
                 tool("calculator", {"expression": "40+2"}, purpose="price it locally instead"))


def _timeout_then_calculator(seconds: int, limit_ms: int) -> dict[str, Any]:
    return steps(tool("wait", {"seconds": seconds}, timeout_s=limit_ms / 1000),
                 tool("calculator", {"expression": "40+2"}, purpose="use the quick estimate instead"))


def _invalid_then_corrected() -> dict[str, Any]:
    return steps(tool("calculator", {"expression": 42}), tool("calculator", {"expression": "6*7"}))


def _database_or_dataset() -> dict[str, Any]:
    return steps(tool("sql_query", {"query": "SELECT name, email FROM customers"}),
                 tool("analyze_data", {"dataset": "sales", "operation": "summary"},
                      purpose="answer from the dataset instead"))


def _rate_limited(n: int) -> dict[str, Any]:
    return steps({"repeat": n, "step": tool("calculator", {"expression": "1+1"})})


def _wait(seconds: float) -> dict[str, Any]:
    return steps(tool("wait", {"seconds": seconds}))


def _wait_ms(ms: int) -> dict[str, Any]:
    return steps(tool("wait", {"seconds": ms / 1000}))


def _five_tools_two_parallel() -> dict[str, Any]:
    return steps(tool("calculator", {"expression": "3*3"}), tool("search", {"query": "Mars"}),
                 {"parallel": [tool("wait", {"seconds": 0.2}), tool("echo", {"value": "ok"})]},
                 tool("finance", {"operation": "loan_payment", "principal": 10000, "rate": 0.04, "years": 5}))


def _large_figures() -> dict[str, Any]:
    return steps(tool("process_file", {"file": "figures.json", "operation": "parse"}),
                 files={"figures.json": "[" + ",".join([LARGE_FIGURE] * LARGE_FILE_FIGURES) + "]"})


def _search_nothing() -> dict[str, Any]:
    return steps(tool("search", {"query": "xyzzyq plughwort frobnicated"}))


def _batch(batches: int) -> dict[str, Any]:
    return steps(tool("batch_job", {"batches": batches, "rows_per_batch": 100, "delay_s": 0.1}))


FORMAT_SAMPLES = {  # T069: one tool call per result format
    "searches the knowledge base": steps(tool("search", {"query": "Mars"})),
    "reads an attached CSV file": steps(tool("process_file", {"file": "regions.csv"}),
                                        files={"regions.csv": "region,amount\nnorth,10\nsouth,20\n"}),
    "reads an attached text file": steps(tool("process_file", {"file": "notes.txt"}),
                                         files={"notes.txt": "Remember the milk.\nCall Bob about the invoice.\n"}),
    "calculates a number": steps(tool("calculator", {"expression": "6*7"})),
}


def _note_with_pii() -> dict[str, Any]:
    return steps(tool("process_file", {"file": "note.txt", "operation": "parse"}),
                 files={"note.txt": f"Customer {NOTE_EMAIL} paid with card {CARD} on Monday.\n"})


def _calc_twice(expression: str) -> dict[str, Any]:
    return steps(tool("calculator", {"expression": expression}), tool("calculator", {"expression": expression}))


def _calc_thrice_and_search(expression: str) -> dict[str, Any]:
    return steps(*(tool("calculator", {"expression": expression}) for _ in range(3)),
                 tool("search", {"query": "Mars"}))


def _chain() -> dict[str, Any]:
    return steps(tool("calculator", {"expression": "1000*2"}, purpose="total the deposits"),
                 tool("finance", {"operation": "compound_interest", "principal": "$prev", "rate": 0.05, "years": 1},
                      chain=True, purpose="grow the deposits for a year"))


def _recommends() -> dict[str, Any]:
    return steps(tool("search", {"query": "Mars"}, extra={"follow_up": TOOL_FOLLOW_UP["search"]}),
                 tool("calculator", {"expression": "225*1000000"}, extra={"follow_up": TOOL_FOLLOW_UP["calculator"]}),
                 complete(result={"answer": "Mars is about 225 million km away"}, summary="Answered.",
                          follow_up=RUN_FOLLOW_UP))


def _pay_after_approval() -> dict[str, Any]:
    return steps({"approval": "May I pay the invoice of 120 EUR?", "timeout_s": 20},
                 tool("echo", {"value": "invoice paid"}, purpose=PAY_PURPOSE))


def _five_at_once() -> dict[str, Any]:
    return steps({"parallel": [tool("wait", {"seconds": 0.3}), tool("wait", {"seconds": 0.2}),
                               tool("calculator", {"expression": "5*5"}), tool("search", {"query": "Mars"}),
                               tool("echo", {"value": "five"})]})


def _reserve_fail_rollback() -> dict[str, Any]:
    return steps(tool("echo", {"value": "2 seats reserved"}, purpose=RESERVE_PURPOSE),
                 tool("fail", {"code": "payment_declined", "message": "the card was declined"},
                      purpose=PAY_CARD_PURPOSE),
                 {"rollback": "payment declined"})


register('calculates "{expression}" and then searches for a customer\'s email and card number',
         _calc_then_search_pii)
register("uses the calculator, then search, then finance", _three_in_sequence)
register("runs two slow tools and the calculator in parallel", _parallel_slow)
register("calculates {n:d} different sums one after another", _sums)
register('calculates "{expression}" to {purpose}', _calc_for)
register('processes an attached CSV file "{name}" of {rows:d} rows', _csv_rows)
register("queries the first 3 customers from the demo database", _sql_first_customers)
register("computes compound interest on {principal:d} at {rate:d}% for {years:d} years", _compound_interest)
register("defines and uses its own greeting tool", _greeting)
register("defines a discount tool checked against a result schema and calls it with a valid and an invalid price",
         _discount)
register("calls a failing tool and then recovers with the calculator", _failing_then_calculator)
register("waits {seconds:d} seconds in a tool limited to {limit_ms:d} ms and then uses the calculator instead",
         _timeout_then_calculator)
register("gives the calculator a number instead of an expression and then corrects it", _invalid_then_corrected)
register("tries the database and falls back to the dataset analysis", _database_or_dataset)
register("calls the calculator {n:d} times as fast as it can", _rate_limited)
register("waits {seconds:g} seconds in a tool", _wait)
register("waits {ms:d} ms in a tool", _wait_ms)
register("uses five tools, two of them in parallel", _five_tools_two_parallel)
register("parses a very large attached file of figures", _large_figures)
register("searches for something the corpus does not contain", _search_nothing)
register("runs a batch job of {batches:d} batches", _batch)
for _phrase, _options in FORMAT_SAMPLES.items():
    register(_phrase, lambda options=_options: options)
register("reads an attached note containing an email and a card number", _note_with_pii)
register('calculates "{expression}" twice', _calc_twice)
register('calculates "{expression}" three times and searches once', _calc_thrice_and_search)
register("computes a principal and feeds it into compound interest", _chain)
register("recommends next steps after its tools and at the end", _recommends)
register("pays an invoice only after her approval", _pay_after_approval)
register("runs five tools at once", _five_at_once)
register("reserves seats, fails to take the payment and rolls back", _reserve_fail_rollback)


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
    ask = await run.client.wait_for(lambda f: f.type == "approval_required" and f.data.get("run_id") == run.run_id,
                                    10, "approval_required")
    approval_id = data(ask)["approval_id"]
    answer = await run.client.request({"type": "respond", "run_id": run.run_id, "approval_id": approval_id,
                                       "approved": True})
    if answer.type != "respond_accepted":
        raise fail(f"the approval was not accepted: {answer.raw}", run.client.frames)
    # When the respond left the client: nothing the approval unlocks may arrive before it.
    context.world.notes["approval"] = {"approval_id": approval_id, "asked": ask,
                                       "sent_at": run.client.sent_at[answer.data["request_id"]]}


# -- Then: announcements (tool_executing) -----------------------------------------------------
@then("{name:Person} sees the {tool_name:Tool} announced in the {category} category with its purpose")
async def step_announced_category(context, name, tool_name, category):
    _run, events, _end = await run_events(context, name)
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
    _run, events, _end = await run_events(context, name)
    call = the_call(events, (0, tool_name))
    shown = data(call).get("parameters", {}).get(param)
    if shown != value:
        raise fail(f"{tool_name}'s announced {param} is {shown!r}, expected {value!r}", events)


@then('{name:Person} sees the {tool_name:Tool} announced for the purpose "{purpose}"')
async def step_announced_purpose(context, name, tool_name, purpose):
    _run, events, _end = await run_events(context, name)
    call = the_call(events, (0, tool_name))
    if data(call).get("purpose") != purpose:
        raise fail(f"{tool_name}'s purpose is {data(call).get('purpose')!r}, expected {purpose!r}", events)


@then("{name:Person} sees the agent's query in the sql_query announcement")
async def step_sql_shown(context, name):
    _run, events, _end = await run_events(context, name)
    call = the_call(events, (0, "sql_query"))
    if data(call).get("parameters", {}).get("query") != SQL_FIRST_CUSTOMERS:
        raise fail(f"the announced query is {data(call).get('parameters')!r}, expected "
                   f"{SQL_FIRST_CUSTOMERS!r}", events)


@then("{name:Person} sees the search query with the email and card number redacted")
async def step_search_redacted(context, name):
    _run, events, _end = await run_events(context, name)
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
    await run_events(context, name)
    await defined_end(context, name)
    leaks = [f for f in raw_of(context, name) if text in f.raw]
    if leaks:
        raise fail(f"{len(leaks)} message(s) show {text!r}", leaks)


@then("nothing {name:Person} received shows the email or the card number")
async def step_never_shows_pii(context, name):
    await run_events(context, name)
    await defined_end(context, name)
    digits = CARD.replace(" ", "")
    leaks = [f for f in raw_of(context, name)
             if EMAIL in f.raw or NOTE_EMAIL in f.raw or CARD in f.raw or digits in f.raw]
    if leaks:
        raise fail(f"{len(leaks)} message(s) show the email or the card number", leaks)


@then("{name:Person} sees the tools {tool_list} announced in that order")
async def step_tools_in_order(context, name, tool_list):
    _run, events, _end = await run_events(context, name)
    expected = [t.strip() for t in tool_list.replace(" and ", ", ").split(",")]
    got = [data(f).get("tool_name") for f in calls_of(events)]
    if got != expected:
        raise fail(f"tools announced {got}, expected {expected}", events)


@then("each of {name:Person}'s tool calls completes before the next one is announced")
async def step_sequential(context, name):
    _run, events, _end = await run_events(context, name)
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
    _run, events, _end = await run_events(context, name)
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
    _run, events, _end = await run_events(context, name)
    ids = [data(c).get("tool_call_id") for c in calls_of(events)]
    if len(ids) != n or len(set(ids)) != n or not all(ids):
        raise fail(f"call ids {ids}: expected {n} distinct ids", events)
    for call in calls_of(events):
        completion(events, call)


@then("{name:Person}'s run takes less than the sum of its tool durations")
async def step_faster_than_sum(context, name):
    _run, events, end = await run_events(context, name)
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
    _run, events, _end = await run_events(context, name)
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
    run, events, _end = await run_events(context, name)
    await defined_end(context, name)
    tools = [f for f in run.client.events(run_id=run.run_id)
             if f.type in ("tool_executing", "tool_progress", "tool_completed")]
    if tools:
        raise fail(f"{len(tools)} tool event(s) in a run that uses no tool", tools)
    if [f.type for f in events][:1] != ["agent_started"]:
        raise fail("the run did not start as expected", events)


@then("{name:Person}'s run reports {n:d} tool calls")
async def step_reports_calls(context, name, n):
    _run, events, end = await run_events(context, name)
    d = data(end)
    reported = (d.get("tool_calls"), (d.get("metrics") or {}).get("tool_calls"))
    received = len(calls_of(events))
    if reported != (n, n) or received != n:
        raise fail(f"the completion reports {reported[0]!r} tool calls (metrics {reported[1]!r}); "
                   f"{received} were received; expected {n}", events)


@then("{name:Person}'s {tool_name:Tool} completion lists its processing steps")
async def step_processing_steps(context, name, tool_name):
    _run, events, _end = await run_events(context, name)
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
    _run, events, _end = await run_events(context, name)
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
    _run, events, _end = await run_events(context, name)
    service = context.world.notes["weather_service"]
    d = data(completion(events, the_call(events, (0, "http_api"))))
    named = d.get("metadata", {}).get("service")
    if named != f"127.0.0.1:{service.port}":
        raise fail(f"the http_api result names {named!r}, not 127.0.0.1:{service.port}", events)


@then("{name:Person}'s http_api call returns the weather service's answer")
async def step_service_answer(context, name):
    _run, events, _end = await run_events(context, name)
    service = context.world.notes["weather_service"]
    d = data(completion(events, the_call(events, (0, "http_api"))))
    if d.get("status") != "success" or d.get("result") != {"status": 200, "body": WEATHER}:
        raise fail(f"http_api ended {d.get('status')!r} with {d.get('result')!r}", events)
    if service.requests != [("GET", "/forecast")]:
        raise fail(f"the weather service received {service.requests}", events)


@then("{name:Person}'s sql_query call returns the columns {columns} and the first {n:d} customers")
async def step_sql_rows(context, name, columns, n):
    _run, events, _end = await run_events(context, name)
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
    _run, events, _end = await run_events(context, name)
    call = the_call(events, (0, tool_name))
    d = data(completion(events, call))
    meta = d.get("metadata", {})
    if not tool_name.startswith("custom.") or meta.get("custom") is not True or meta.get("definition") != tool_name:
        raise fail(f"{tool_name}'s result metadata is {meta!r}", events)


# -- Then: how calls end (status, error code, timing) -----------------------------------------
@then("{name:Person}'s {which:ToolCall} call succeeds with the result {value:Number}")
async def step_succeeds_with(context, name, which, value):
    _run, events, _end = await run_events(context, name)
    done = completion(events, the_call(events, which))
    d = data(done)
    if d.get("status") != "success" or d.get("result") != value or "error" in d:
        raise fail(f"{which[1]} ended {d.get('status')!r} with {d.get('result')!r}, expected success with "
                   f"{value!r}", events)


@then('{name:Person}\'s {which:ToolCall} call succeeds with the result "{text}"')
async def step_succeeds_with_text(context, name, which, text):
    _run, events, _end = await run_events(context, name)
    d = data(completion(events, the_call(events, which)))
    if d.get("status") != "success" or d.get("result") != text or "error" in d:
        raise fail(f"{which[1]} ended {d.get('status')!r} with {d.get('result')!r}, expected {text!r}", events)


@then('{name:Person}\'s {which:ToolCall} call ends with status {status:ToolStatus} and the code "{code}"')
async def step_ends_with_code(context, name, which, status, code):
    _run, events, _end = await run_events(context, name)
    done = completion(events, the_call(events, which))
    d = data(done)
    if d.get("status") != status or (d.get("error") or {}).get("code") != code:
        raise fail(f"{which[1]} ended {d.get('status')!r} with error {d.get('error')!r}; expected {status} "
                   f"with code {code!r}", events)
    if d.get("result") is not None:
        raise fail(f"a failed {which[1]} call still carries a result: {d.get('result')!r}", events)


@then('{name:Person}\'s {which:ToolCall} call ends with status {status:ToolStatus} naming "{text}"')
async def step_ends_naming(context, name, which, status, text):
    _run, events, _end = await run_events(context, name)
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
    _run, events, _end = await run_events(context, name)
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
    _run, events, _end = await run_events(context, name)
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
    _run, events, _end = await run_events(context, name)
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
    _run, events, _end = await run_events(context, name)
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
    _run, events, _end = await run_events(context, name)
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
