"""Steps about tool results: the tool_completed scenarios (T061-T080).

The scripted behaviours these scenarios use are registered in tools.py; the shared reading
helpers are in agentevents.testing.toolcalls. Every Then waits for the run's agent_completed.
"""

from __future__ import annotations

from typing import Any

import orjson
from behave import then
from jsonschema import ValidationError

from agentevents.protocol.schemas import validate_server_frame
from agentevents.testing.client import Frame
from agentevents.testing.figures import record_figure
from agentevents.testing.limits import CHAT_MESSAGE_LIMIT_KB, LARGE_FILE_FIGURES, LARGE_RESULT_MIN_KB
from agentevents.testing.matchers import timestamp
from agentevents.testing.parse_types import register_all
from agentevents.testing.polling import poll
from agentevents.testing.toolcalls import (
    LARGE_FIGURE,
    PAY_CARD_PURPOSE,
    PAY_PURPOSE,
    RESERVE_PURPOSE,
    RUN_FOLLOW_UP,
    TOOL_FOLLOW_UP,
    call_for,
    calls_of,
    completion,
    data,
    fail,
    the_call,
)

register_all()

AUDIT_DEADLINE_S = 10


@then("{name:Person}'s {tool_name:Tool} completion has its name, call id, status, result, duration, metadata and "
      "tool version")
async def step_completion_fields(context, name, tool_name):
    _run, _end, events = await context.world.finished(name)
    call = the_call(events, (0, tool_name))
    d = data(completion(events, call))
    checks = {"tool_name": d.get("tool_name") == tool_name,
              "tool_call_id": d.get("tool_call_id") == data(call).get("tool_call_id"),
              "status": d.get("status") == "success", "result": "result" in d and d["result"] is not None,
              "duration_ms": isinstance(d.get("duration_ms"), int) and d["duration_ms"] >= 0,
              "metadata": isinstance(d.get("metadata"), dict),
              "tool_version": isinstance(d.get("tool_version"), str) and bool(d["tool_version"])}
    wrong = [k for k, ok in checks.items() if not ok]
    if wrong:
        raise fail(f"the {tool_name} completion has missing or wrong {wrong}", events)


@then("{name:Person}'s tool events validate against the published schemas")
async def step_tool_schemas(context, name):
    _run, _end, events = await context.world.finished(name)
    tools = [f for f in events if f.type in ("tool_executing", "tool_completed")]
    if not any(f.type == "tool_completed" for f in tools):
        raise fail("no tool_completed to validate", events)
    for f in tools:
        try:
            validate_server_frame(f.data)
        except ValidationError as exc:
            raise fail(f"#{f.index} {f.type} is invalid: {exc.message}", events) from None


@then("every tool call {name:Person} saw announced completes exactly once, afterwards, with the same call id")
async def step_pairing(context, name):
    _run, end, events = await context.world.finished(name)
    calls = calls_of(events)
    if len(calls) < 4:
        raise fail(f"only {len(calls)} tool calls in a multi-tool run", events)
    announced = {data(c).get("tool_call_id") for c in calls}
    if len(announced) != len(calls):
        raise fail("two announcements share a call id", events)
    for call in calls:
        done = completion(events, call)
        if not call.index < done.index < end.index:
            raise fail(f"the completion of {data(call).get('tool_call_id')} is not between its announcement and "
                       "the end of the run", events)
        if data(done).get("tool_name") != data(call).get("tool_name"):
            raise fail(f"{data(call).get('tool_call_id')} completes as another tool", events)
    orphans = [f for f in events if f.type == "tool_completed" and data(f).get("tool_call_id") not in announced]
    if orphans:
        raise fail(f"{len(orphans)} completion(s) without an announcement", events)


@then("{name:Person}'s {tool_name:Tool} call reports a duration between {low:d} and {high:d} ms that agrees with "
      "its event times")
async def step_duration(context, name, tool_name, low, high):
    _run, _end, events = await context.world.finished(name)
    call = the_call(events, (0, tool_name))
    done = completion(events, call)
    duration = data(done).get("duration_ms")
    span_ms = (timestamp(done) - timestamp(call)).total_seconds() * 1000
    record_figure(context, f"{tool_name} call reported {duration} ms; its events stamped {span_ms:.0f} ms apart and "
                           f"received {(done.at - call.at) * 1000:.0f} ms apart — expected {low}-{high} ms")
    # The workers' event loop (libuv) keeps time in whole milliseconds, so a 300 ms sleep can end
    # a fraction of a millisecond early: 1 ms below the bound is the clock, not the tool.
    if not isinstance(duration, int) or not low - 1 <= duration <= high:
        raise fail(f"duration_ms is {duration!r}, expected between {low} and {high}", events)
    if abs(span_ms - duration) > 150 or span_ms < duration - 2:
        raise fail(f"duration_ms {duration} disagrees with the timestamps, {span_ms:.0f} ms apart", events)


def _file_result(events: list[Frame]) -> Frame:
    return completion(events, the_call(events, (0, "process_file")))


@then("{name:Person} receives the first figures of the file, and how many there are in all")
async def step_summarized(context, name):
    _run, _end, events = await context.world.finished(name)
    done = _file_result(events)
    d = data(done)
    result = d.get("result")
    if d.get("status") != "success" or d.get("result_truncated") is not True:
        raise fail(f"the result is not marked truncated: status {d.get('status')!r}, "
                   f"result_truncated {d.get('result_truncated')!r}", events)
    if not isinstance(d.get("result_bytes"), int) or d["result_bytes"] < LARGE_RESULT_MIN_KB * 1024:
        raise fail(f"result_bytes {d.get('result_bytes')!r}: the full result was over {LARGE_RESULT_MIN_KB} KB",
                   events)
    total, shown = d.get("total_items"), d.get("shown_items")
    if not isinstance(result, list) or total != LARGE_FILE_FIGURES or not isinstance(shown, int):
        raise fail(f"item counts: total_items {total!r} (expected {LARGE_FILE_FIGURES}), shown_items {shown!r}",
                   events)
    if not 0 < shown < total or shown != len(result):
        raise fail(f"shown_items {shown} for {len(result)} items shown out of {total}", events)
    if any(item != float(LARGE_FIGURE) for item in result):
        raise fail("the items shown are not the head of the result", events)
    record_figure(context, f"the file's result of {d['result_bytes']:,} bytes ({total:,} figures) arrived as its "
                           f"first {shown:,} figures and the count of all")


@then("the file's result reaches {name:Person} in a message small enough for a chat screen")
async def step_frame_size(context, name):
    _run, _end, events = await context.world.finished(name)
    done = _file_result(events)
    size = len(done.raw.encode())
    record_figure(context, f"the file's result reached {name} in a {size / 1024:.1f} KB message "
                           f"— limit {CHAT_MESSAGE_LIMIT_KB} KB")
    if size >= CHAT_MESSAGE_LIMIT_KB * 1024:
        raise fail(f"the tool_completed message is {size} bytes, over {CHAT_MESSAGE_LIMIT_KB} KB", events)


@then("{name:Person}'s {which:ToolCall} call succeeds with an empty result and no error")
async def step_empty(context, name, which):
    _run, _end, events = await context.world.finished(name)
    d = data(completion(events, the_call(events, which)))
    if d.get("status") != "success" or d.get("result") != [] or "error" in d:
        raise fail(f"{which[1]} ended {d.get('status')!r} with {d.get('result')!r} and error {d.get('error')!r}",
                   events)


@then("{name:Person} receives {n:d} progress updates with partial results, in order, before the {tool_name:Tool} "
      "completes")
async def step_batch_progress(context, name, n, tool_name):
    _run, _end, events = await context.world.finished(name)
    call = the_call(events, (0, tool_name))
    done = completion(events, call)
    cid = data(call)["tool_call_id"]
    updates = [f for f in events if f.type == "tool_progress" and data(f).get("tool_call_id") == cid
               and data(f).get("status") == "running"]
    if len(updates) != n:
        raise fail(f"{len(updates)} progress updates, expected {n}", events)
    if not all(call.index < f.index < done.index for f in updates):
        raise fail("a progress update is outside the call's announcement and completion", events)
    batches = [data(f).get("batch") for f in updates]
    rows = [(data(f).get("partial_result") or {}).get("rows") for f in updates]
    if batches != list(range(1, n + 1)) or not all(isinstance(r, int) for r in rows) \
            or rows != sorted(set(rows)) or rows[-1] != (data(done).get("result") or {}).get("rows"):
        raise fail(f"progress batches {batches} with partial rows {rows}; final {data(done).get('result')!r}",
                   events)


@then("{name:Person}'s tool result says it is in the {expected} format")
async def step_format(context, name, expected):
    _run, _end, events = await context.world.finished(name)
    calls = calls_of(events)
    if len(calls) != 1:
        raise fail(f"{len(calls)} tool calls, expected the one producing the {expected} result", events)
    d = data(completion(events, calls[0]))
    got = d.get("metadata", {}).get("format")
    if d.get("status") != "success" or got != expected:
        raise fail(f"the {d.get('tool_name')} result ended {d.get('status')!r} in format {got!r}, "
                   f"expected {expected!r}", events)


@then("{name:Person}'s search results carry a confidence between 0 and 1")
async def step_confidence(context, name):
    _run, _end, events = await context.world.finished(name)
    d = data(completion(events, the_call(events, (0, "search"))))
    confidence = d.get("metadata", {}).get("confidence")
    if not d.get("result"):
        raise fail("the search found nothing", events)
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 < confidence <= 1:
        raise fail(f"the search confidence is {confidence!r}, expected a number in (0, 1] for a search "
                   "with results", events)
    record_figure(context, f"search confidence {confidence}")


def _sources(events: list[Frame]) -> list[str]:
    d = data(completion(events, the_call(events, (0, "search"))))
    return [r.get("source") for r in d.get("result") or []]


@then("{name:Person}'s search call cites its corpus sources")
async def step_tool_sources(context, name):
    _run, _end, events = await context.world.finished(name)
    d = data(completion(events, the_call(events, (0, "search"))))
    sources = _sources(events)
    if not sources or not all(isinstance(s, str) and s.startswith("corpus://") for s in sources):
        raise fail(f"the search results cite {sources!r}", events)
    if d.get("metadata", {}).get("source") != sources:
        raise fail(f"the search metadata cites {d.get('metadata', {}).get('source')!r}, its results {sources}",
                   events)


@then("{name:Person}'s final result cites the same sources")
async def step_final_sources(context, name):
    _run, end, events = await context.world.finished(name)
    final = [s.get("source") for s in (data(end).get("result") or {}).get("sources") or []]
    if not final or final != _sources(events):
        raise fail(f"the final result cites {final!r}; the search found {_sources(events)!r}", events)


@then("{name:Person}'s {tool_name:Tool} result shows the email and card number redacted")
async def step_result_redacted(context, name, tool_name):
    _run, _end, events = await context.world.finished(name)
    d = data(completion(events, the_call(events, (0, tool_name))))
    text = orjson.dumps(d.get("result")).decode()
    if "[REDACTED:email]" not in text or "[REDACTED:card]" not in text or "paid with card" not in text:
        raise fail(f"the result is not redacted as expected: {text[:300]}", events)
    if not isinstance(d.get("redactions"), int) or d["redactions"] < 2:
        raise fail(f"the completion counts {d.get('redactions')!r} redactions", events)


@then("{name:Person}'s first {tool_name:Tool} call is not from the cache and the second is, with the same result")
async def step_cached(context, name, tool_name):
    _run, _end, events = await context.world.finished(name)
    calls = calls_of(events, tool_name)
    if len(calls) != 2:
        raise fail(f"{len(calls)} {tool_name} calls, expected 2", events)
    first, second = (data(completion(events, c)) for c in calls)
    cached = (first.get("metadata", {}).get("cached"), second.get("metadata", {}).get("cached"))
    if cached != (False, True):
        raise fail(f"metadata.cached is {cached}, expected (False, True)", events)
    if first.get("status") != "success" or first.get("result") != second.get("result") \
            or second.get("status") != "success":
        raise fail(f"results differ: {first.get('result')!r} then {second.get('result')!r}", events)


@then("every tool completion {name:Person} received names its tool version")
async def step_versions(context, name):
    _run, _end, events = await context.world.finished(name)
    done = [f for f in events if f.type == "tool_completed"]
    by_tool: dict[str, set[Any]] = {}
    for f in done:
        by_tool.setdefault(data(f).get("tool_name"), set()).add(data(f).get("tool_version"))
    if not done or any(len(v) != 1 or not all(isinstance(x, str) and x for x in v) for v in by_tool.values()):
        raise fail(f"tool versions by tool: {by_tool}", events)


@then("{name:Person}'s repeated {tool_name:Tool} calls have result versions {versions}")
async def step_result_versions(context, name, tool_name, versions):
    _run, _end, events = await context.world.finished(name)
    expected = [int(v) for v in versions.replace(" and ", ", ").split(",")]
    got = [data(completion(events, c)).get("result_version") for c in calls_of(events, tool_name)]
    others = [data(f).get("result_version") for f in events
              if f.type == "tool_completed" and data(f).get("tool_name") != tool_name]
    if got != expected or any(v != 1 for v in others):
        raise fail(f"{tool_name} result versions {got} (expected {expected}); other tools {others}", events)


@then("{name:Person}'s {tool_name:Tool} call names the {source:Tool} call it continues")
async def step_chained(context, name, tool_name, source):
    _run, _end, events = await context.world.finished(name)
    origin = data(the_call(events, (0, source)))["tool_call_id"]
    call = the_call(events, (0, tool_name))
    named = (data(call).get("chained_from"), data(completion(events, call)).get("chained_from"))
    if named != (origin, origin):
        raise fail(f"{tool_name}'s events name {named}, expected {source}'s call {origin}", events)


@then("{name:Person}'s {tool_name:Tool} call's {param:w} is the {source:Tool}'s result")
async def step_chained_param(context, name, tool_name, param, source):
    _run, _end, events = await context.world.finished(name)
    result = data(completion(events, the_call(events, (0, source)))).get("result")
    call = the_call(events, (0, tool_name))
    shown = data(call).get("parameters", {}).get(param)
    if result is None or shown != result:
        raise fail(f"{tool_name}'s {param} is {shown!r}; {source} returned {result!r}", events)
    if data(completion(events, call)).get("status") != "success":
        raise fail(f"{tool_name} did not succeed with the chained value", events)


@then("{name:Person}'s tool completions carry the agent's recommended next steps")
async def step_tool_follow_up(context, name):
    _run, _end, events = await context.world.finished(name)
    calls = calls_of(events)
    if [data(c).get("tool_name") for c in calls] != list(TOOL_FOLLOW_UP):
        raise fail(f"expected calls {list(TOOL_FOLLOW_UP)}", events)
    for call in calls:
        d = data(completion(events, call))
        if d.get("status") != "success" or d.get("follow_up") != TOOL_FOLLOW_UP[d.get("tool_name")]:
            raise fail(f"{d.get('tool_name')} completion recommends {d.get('follow_up')!r}", events)


@then("{name:Person}'s final result carries recommended next steps")
async def step_final_follow_up(context, name):
    _run, end, events = await context.world.finished(name)
    if data(end).get("status") != "completed" or data(end).get("follow_up") != RUN_FOLLOW_UP:
        raise fail(f"the completion recommends {data(end).get('follow_up')!r}", events)


@then("{name:Person} sees the approval request, {her:Possessive} answer accepted, and only then "
      "the payment tool's events")
async def step_after_approval(context, name, her):
    run, end, events = await context.world.finished(name)
    note = context.world.notes.get("approval")
    if note is None:
        raise fail("no approval was given", events)
    ask = note["asked"]
    if data(ask).get("approval_id") != note["approval_id"] or not data(ask).get("question"):
        raise fail("the approval request has no question", events)
    call = call_for(events, PAY_PURPOSE)
    if len(calls_of(events)) != 1:
        raise fail("expected the payment as the only tool call", events)
    done = completion(events, call)
    if not ask.index < call.index or call.at <= note["sent_at"]:
        raise fail(f"the payment was announced before {name} answered", run.client.frames)
    if data(done).get("status") != "success" or not done.index < end.index:
        raise fail(f"the payment ended {data(done).get('status')!r}", events)
    approvals = data(end).get("approvals") or []
    if [(a.get("approval_id"), a.get("approved")) for a in approvals] != [(note["approval_id"], True)]:
        raise fail(f"the completion lists approvals {approvals!r}", events)


@then("{name:Person} receives {n:d} tool completions, each matching one of the {m:d} calls, before the run completes")
async def step_n_completions(context, name, n, m):
    _run, end, events = await context.world.finished(name)
    calls = calls_of(events)
    done = [f for f in events if f.type == "tool_completed"]
    if len(calls) != m or len(done) != n:
        raise fail(f"{len(calls)} calls and {len(done)} completions; expected {m} and {n}", events)
    ids = sorted(data(c)["tool_call_id"] for c in calls)
    if sorted(data(f).get("tool_call_id") for f in done) != ids or len(set(ids)) != m:
        raise fail("the completions do not match the calls one to one", events)
    for call in calls:
        f = completion(events, call)
        if data(f).get("status") != "success" or not call.index < f.index < end.index:
            raise fail(f"{data(call)['tool_name']} ended {data(f).get('status')!r} at #{f.index}", events)
    slow_done = min(f.index for f in done if data(f).get("tool_name") == "wait")
    if max(c.index for c in calls) > slow_done:
        raise fail("the tools did not run together: one started after another had finished", events)


@then("{name:Person} sees the reservation undone with status rolled_back, naming the call it compensates")
async def step_rolled_back(context, name):
    _run, end, events = await context.world.finished(name)
    cid = data(call_for(events, RESERVE_PURPOSE))["tool_call_id"]
    undos = calls_of(events, "undo")
    if len(undos) != 1:
        raise fail(f"{len(undos)} undo calls, expected one", events)
    undo = undos[0]
    d = data(completion(events, undo))
    if (data(undo).get("parameters", {}).get("tool_call_id"), data(undo).get("compensates")) != (cid, cid):
        raise fail(f"the undo call names {data(undo).get('parameters')} / {data(undo).get('compensates')!r}, "
                   f"not the reservation {cid}", events)
    if d.get("status") != "rolled_back" or (d.get("result") or {}).get("rolled_back") != cid \
            or d.get("compensates") != cid:
        raise fail(f"the undo ended {d.get('status')!r} with {d.get('result')!r}", events)
    failed = [f for f in events if f.type == "tool_completed" and data(f).get("status") == "error"]
    if not failed or not failed[0].index < undo.index < end.index:
        raise fail("the rollback did not follow the failed step", events)


@then("{name:Person} sees that the failed payment is not rolled back")
async def step_not_rolled_back(context, name):
    _run, _end, events = await context.world.finished(name)
    payment = call_for(events, PAY_CARD_PURPOSE)
    undone = [data(c).get("parameters", {}).get("tool_call_id") for c in calls_of(events, "undo")]
    if data(completion(events, payment)).get("status") != "error" or data(payment)["tool_call_id"] in undone:
        raise fail(f"the payment did not fail, or was rolled back: undone {undone}", events)


@then("every tool completion {name:Person} received is in the audit log with {her:Possessive} user and connection")
async def step_audit(context, name, her):
    run, _end, events = await context.world.finished(name)
    person = context.world.person(name)
    done = [f for f in events if f.type == "tool_completed"]
    if len(done) < 2:
        raise fail(f"{len(done)} tool completions; the run should have several", events)
    connection_id = next(f.data["connection_id"] for f in run.client.frames if f.type == "connection_established")
    wanted = {f.data["event_id"]: f for f in done}
    # The audit is written in batches: poll it, with a deadline, until it holds every delivery.
    rows = await poll(lambda: context.world.target.control.audit_rows(list(wanted)),
                      lambda rows: {r["event_id"] for r in rows if r["connection_id"] == connection_id} >= set(wanted),
                      AUDIT_DEADLINE_S, 0.1)
    mine = [r for r in rows if r["connection_id"] == connection_id]
    missing = sorted(set(wanted) - {r["event_id"] for r in mine})
    if missing:
        raise fail(f"{len(missing)} delivered tool completion(s) not in the audit log for connection "
                   f"{connection_id} after {AUDIT_DEADLINE_S}s: {missing}", done)
    for r in mine:
        f = wanted[r["event_id"]]
        if (r["user_id"], r["thread_id"], r["seq"]) != (person.user_id, f.data["thread_id"], f.data["seq"]):
            raise fail(f"audit row {r} does not match the delivered event #{f.index}", done)
    if len(mine) != len(wanted):
        raise fail(f"{len(mine)} audit rows for {len(wanted)} deliveries on this connection: {mine}", done)
    record_figure(context, f"{len(mine)} tool completions {name} received are audited for connection "
                           f"{connection_id}")
