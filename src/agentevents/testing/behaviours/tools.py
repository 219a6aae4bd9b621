"""The tool scenarios: the scripted behaviours of tool_executing.feature and tool_completed.feature
("calculates \"6*7\" twice", "runs five tools at once"), and the checks of features/steps/tools.py:
tool calls announced (tool_executing) and how they end (status, error code, timing). The checks of
results are in ``behaviours.tools_results``, the reading helpers in ``testing.toolcalls``.

Every check waits for the run's agent_completed (its defined end) before it reads what the user
received, and fails with the problem and the frames received.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..figures import record_figure
from ..httpd import JsonService
from ..limits import LARGE_FILE_FIGURES
from ..matchers import timestamp
from ..measures import human
from ..scripts import complete, register, steps
from ..steps_support import answer_approval, approval_id
from ..toolcalls import (
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
    the_call,
)


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




# -- what the person does ---------------------------------------------------------------------

async def start_weather_service(context) -> None:
    service = await JsonService({"/forecast": WEATHER}, context.world.target.callback_url).start()
    context.world.closers.append(service.close)
    context.world.notes["weather_service"] = service


class Listener:
    """A loopback port of the user's own choosing that counts every connection made to it."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> Listener:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _accept(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def point_http_tool_at_own_service(context, name: str) -> None:
    """The client names the address (options.http_api_base_url): a port only she listens on."""
    listener = await Listener().start()
    context.world.closers.append(listener.close)
    context.world.notes["own_service"] = listener
    options = steps(tool("http_api", {"path": "/collect", "method": "POST",
                                      "body": {"notes": "what the agent has read so far"}},
                         purpose="send the notes to the user's own service"),
                    complete(result="sent", summary="Sent the notes."),
                    http_api_base_url=listener.base_url)
    await context.world.start(name, "scripted", "send its notes to her own service", options=options)


async def own_service_never_contacted(context, name: str) -> None:
    """After the run's end and an in-order barrier: the tool connected to nothing there."""
    run, _end, events = await context.world.finished(name)
    await context.world.quiet([run.client])
    listener = context.world.notes["own_service"]
    record_figure(context, f"{listener.connections} connection(s) reached {listener.base_url}")
    if listener.connections:
        raise fail(f"the http_api tool connected {listener.connections} time(s) to {listener.base_url}, "
                   "an address the client chose", events)


async def approve_payment(context, name: str) -> None:
    run = context.world.last_run(name)
    ask, answer = await answer_approval(run, True, "the approval was not accepted")
    # When the respond left the client: nothing the approval unlocks may arrive before it.
    context.world.notes["approval"] = {"approval_id": approval_id(ask), "asked": ask,
                                       "sent_at": run.client.sent_at[answer.data["request_id"]]}


# -- announcements (tool_executing) -----------------------------------------------------------

async def announced_in_category(context, name: str, tool_name: str, category: str) -> None:
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


async def announced_with_param(context, name: str, tool_name: str, param: str, value: str) -> None:
    _run, _end, events = await context.world.finished(name)
    call = the_call(events, (0, tool_name))
    shown = data(call).get("parameters", {}).get(param)
    if shown != value:
        raise fail(f"{tool_name}'s announced {param} is {shown!r}, expected {value!r}", events)


async def announced_for_purpose(context, name: str, tool_name: str, purpose: str) -> None:
    _run, _end, events = await context.world.finished(name)
    call = the_call(events, (0, tool_name))
    if data(call).get("purpose") != purpose:
        raise fail(f"{tool_name}'s purpose is {data(call).get('purpose')!r}, expected {purpose!r}", events)


async def sql_query_shown(context, name: str) -> None:
    _run, _end, events = await context.world.finished(name)
    call = the_call(events, (0, "sql_query"))
    if data(call).get("parameters", {}).get("query") != SQL_FIRST_CUSTOMERS:
        raise fail(f"the announced query is {data(call).get('parameters')!r}, expected "
                   f"{SQL_FIRST_CUSTOMERS!r}", events)


async def search_query_redacted(context, name: str) -> None:
    _run, _end, events = await context.world.finished(name)
    call = the_call(events, (0, "search"))
    query = data(call).get("parameters", {}).get("query")
    expected = "orders of [REDACTED:email] paid with card [REDACTED:card]"
    if query != expected:
        raise fail(f"the announced search query is {query!r}, expected {expected!r}", events)
    if not isinstance(data(call).get("redactions"), int) or data(call)["redactions"] < 2:
        raise fail(f"the search announcement does not count its redactions: {data(call).get('redactions')!r}",
                   events)


async def never_shows(context, name: str, text: str) -> None:
    await context.world.finished(name)
    await defined_end(context, name)
    leaks = [f for f in raw_of(context, name) if text in f.raw]
    if leaks:
        raise fail(f"{len(leaks)} message(s) show {text!r}", leaks)


async def never_shows_pii(context, name: str) -> None:
    await context.world.finished(name)
    await defined_end(context, name)
    digits = CARD.replace(" ", "")
    leaks = [f for f in raw_of(context, name)
             if EMAIL in f.raw or NOTE_EMAIL in f.raw or CARD in f.raw or digits in f.raw]
    if leaks:
        raise fail(f"{len(leaks)} message(s) show the email or the card number", leaks)


async def announced_in_order(context, name: str, tool_list: str) -> None:
    _run, _end, events = await context.world.finished(name)
    expected = [t.strip() for t in tool_list.replace(" and ", ", ").split(",")]
    got = [data(f).get("tool_name") for f in calls_of(events)]
    if got != expected:
        raise fail(f"tools announced {got}, expected {expected}", events)


async def one_after_another(context, name: str) -> None:
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


async def all_announced_before_a_slow_one_ends(context, name: str, n: int) -> None:
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


async def distinct_call_ids(context, name: str, n: int) -> None:
    _run, _end, events = await context.world.finished(name)
    ids = [data(c).get("tool_call_id") for c in calls_of(events)]
    if len(ids) != n or len(set(ids)) != n or not all(ids):
        raise fail(f"call ids {ids}: expected {n} distinct ids", events)
    for call in calls_of(events):
        completion(events, call)


async def faster_than_their_sum(context, name: str) -> None:
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


async def announcements_within(context, name: str, limit: float) -> None:
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


async def no_tool_events(context, name: str) -> None:
    run, _end, events = await context.world.finished(name)
    await defined_end(context, name)
    tools = [f for f in run.client.events(run_id=run.run_id)
             if f.type in ("tool_executing", "tool_progress", "tool_completed")]
    if tools:
        raise fail(f"{len(tools)} tool event(s) in a run that uses no tool", tools)
    if [f.type for f in events][:1] != ["agent_started"]:
        raise fail("the run did not start as expected", events)


async def reports_tool_calls(context, name: str, n: int) -> None:
    _run, end, events = await context.world.finished(name)
    d = data(end)
    reported = (d.get("tool_calls"), (d.get("metrics") or {}).get("tool_calls"))
    received = len(calls_of(events))
    if reported != (n, n) or received != n:
        raise fail(f"the completion reports {reported[0]!r} tool calls (metrics {reported[1]!r}); "
                   f"{received} were received; expected {n}", events)


async def lists_processing_steps(context, name: str, tool_name: str) -> None:
    _run, _end, events = await context.world.finished(name)
    call = the_call(events, (0, tool_name))
    done = completion(events, call)
    progress = data(done).get("metadata", {}).get("progress")
    if not isinstance(progress, list) or len(progress) < 2 or not all(isinstance(s, str) and s for s in progress):
        raise fail(f"{tool_name}'s completion lists no processing steps: {progress!r}", events)
    dataset = data(call).get("parameters", {}).get("dataset")
    if dataset and not any(dataset in s for s in progress):
        raise fail(f"no processing step mentions the dataset {dataset!r}: {progress}", events)


async def file_rows_and_steps(context, name: str, rows: int) -> None:
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


async def names_the_weather_service(context, name: str) -> None:
    _run, _end, events = await context.world.finished(name)
    service = context.world.notes["weather_service"]
    d = data(completion(events, the_call(events, (0, "http_api"))))
    named = d.get("metadata", {}).get("service")
    if named != f"127.0.0.1:{service.port}":
        raise fail(f"the http_api result names {named!r}, not 127.0.0.1:{service.port}", events)


async def returns_the_forecast(context, name: str) -> None:
    _run, _end, events = await context.world.finished(name)
    service = context.world.notes["weather_service"]
    d = data(completion(events, the_call(events, (0, "http_api"))))
    if d.get("status") != "success" or d.get("result") != {"status": 200, "body": WEATHER}:
        raise fail(f"http_api ended {d.get('status')!r} with {d.get('result')!r}", events)
    if service.requests != [("GET", "/forecast")]:
        raise fail(f"the weather service received {service.requests}", events)


async def returns_first_customers(context, name: str, columns: str, n: int) -> None:
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


async def marked_custom(context, name: str, tool_name: str) -> None:
    _run, _end, events = await context.world.finished(name)
    call = the_call(events, (0, tool_name))
    d = data(completion(events, call))
    meta = d.get("metadata", {})
    if not tool_name.startswith("custom.") or meta.get("custom") is not True or meta.get("definition") != tool_name:
        raise fail(f"{tool_name}'s result metadata is {meta!r}", events)


# -- how calls end (status, error code, timing) -----------------------------------------------

async def succeeds_with(context, name: str, which: tuple[int, str], value: Any) -> None:
    """The call succeeded with this result (a number, or a text) and no error."""
    _run, _end, events = await context.world.finished(name)
    d = data(completion(events, the_call(events, which)))
    if d.get("status") != "success" or d.get("result") != value or "error" in d:
        expected = repr(value) if isinstance(value, str) else f"success with {value!r}"
        raise fail(f"{which[1]} ended {d.get('status')!r} with {d.get('result')!r}, expected {expected}", events)


async def ends_with_code(context, name: str, which: tuple[int, str], status: str, code: str) -> None:
    _run, _end, events = await context.world.finished(name)
    d = data(completion(events, the_call(events, which)))
    if d.get("status") != status or (d.get("error") or {}).get("code") != code:
        raise fail(f"{which[1]} ended {d.get('status')!r} with error {d.get('error')!r}; expected {status} "
                   f"with code {code!r}", events)
    if d.get("result") is not None:
        raise fail(f"a failed {which[1]} call still carries a result: {d.get('result')!r}", events)


async def ends_naming(context, name: str, which: tuple[int, str], status: str, text: str) -> None:
    _run, _end, events = await context.world.finished(name)
    d = data(completion(events, the_call(events, which)))
    error = d.get("error") or {}
    if d.get("status") != status or error.get("code") != status:
        raise fail(f"{which[1]} ended {d.get('status')!r} with error {error!r}; expected {status}", events)
    if text not in str(error.get("message", "")):
        raise fail(f"the {status} message does not name {text!r}: {error.get('message')!r}", events)


async def ends_promptly(context, name: str, which: tuple[int, str], status: str, limit: float) -> None:
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


async def succeeds_after_the_failure(context, name: str, tool_name: str) -> None:
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


async def no_database_rows(context, name: str) -> None:
    _run, _end, events = await context.world.finished(name)
    await defined_end(context, name)
    for call in calls_of(events, "sql_query"):
        if data(completion(events, call)).get("result") is not None:
            raise fail("a sql_query completion carries rows", events)
    leaks = [f for f in raw_of(context, name) if "Lovelace" in f.raw or "[REDACTED:email]" in f.raw]
    if leaks:
        raise fail("a message carries customer rows from the database", leaks)


async def rate_limited_after(context, name: str, n: int) -> None:
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


async def slow_notice_in_between(context, name: str, tool_name: str) -> None:
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
