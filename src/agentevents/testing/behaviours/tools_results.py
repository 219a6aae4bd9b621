"""The tool result scenarios (features/steps/tools_results.py, tool_completed.feature): what a
tool_completed says — its fields, schema, pairing with its announcement, duration, size, progress,
format, sources, redactions, caching, versions, chaining, follow-ups, approvals, rollbacks and audit.

Their scripted behaviours are in ``behaviours.tools``, the reading helpers in ``testing.toolcalls``.
Every check waits for the run's agent_completed and fails with the problem and the frames received.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..client import Frame
from ..figures import record_figure
from ..limits import CHAT_MESSAGE_LIMIT_KB, LARGE_FILE_FIGURES, LARGE_RESULT_MIN_KB
from ..matchers import timestamp
from ..polling import poll
from ..steps_support import established, schema_error
from ..toolcalls import (
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
    tool_completions,
)

AUDIT_DEADLINE_S = 10


def _file_result(events: list[Frame]) -> Frame:
    return completion(events, the_call(events, (0, "process_file")))


def _sources(events: list[Frame]) -> list[str]:
    d = data(completion(events, the_call(events, (0, "search"))))
    return [r.get("source") for r in d.get("result") or []]


# -- the completion's fields, schema, pairing and duration ------------------------------------

async def has_every_field(context, name: str, tool_name: str) -> None:
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


async def tool_events_match_schemas(context, name: str) -> None:
    _run, _end, events = await context.world.finished(name)
    tools = [f for f in events if f.type in ("tool_executing", "tool_completed")]
    if not any(f.type == "tool_completed" for f in tools):
        raise fail("no tool_completed to validate", events)
    for f in tools:
        problem = schema_error(f)
        if problem is not None:
            raise fail(f"#{f.index} {f.type} is invalid: {problem}", events)


async def each_call_completes_once(context, name: str) -> None:
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
    orphans = [f for f in tool_completions(events) if data(f).get("tool_call_id") not in announced]
    if orphans:
        raise fail(f"{len(orphans)} completion(s) without an announcement", events)


async def duration_agrees(context, name: str, tool_name: str, low: int, high: int) -> None:
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


# -- large results, empty results, progress and format ----------------------------------------

async def head_of_the_file_and_its_count(context, name: str) -> None:
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


async def file_result_fits_a_chat_message(context, name: str) -> None:
    _run, _end, events = await context.world.finished(name)
    done = _file_result(events)
    size = len(done.raw.encode())
    record_figure(context, f"the file's result reached {name} in a {size / 1024:.1f} KB message "
                           f"— limit {CHAT_MESSAGE_LIMIT_KB} KB")
    if size >= CHAT_MESSAGE_LIMIT_KB * 1024:
        raise fail(f"the tool_completed message is {size} bytes, over {CHAT_MESSAGE_LIMIT_KB} KB", events)


async def empty_result_without_error(context, name: str, which: tuple[int, str]) -> None:
    _run, _end, events = await context.world.finished(name)
    d = data(completion(events, the_call(events, which)))
    if d.get("status") != "success" or d.get("result") != [] or "error" in d:
        raise fail(f"{which[1]} ended {d.get('status')!r} with {d.get('result')!r} and error {d.get('error')!r}",
                   events)


async def progress_in_order(context, name: str, n: int, tool_name: str) -> None:
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


async def in_the_format(context, name: str, expected: str) -> None:
    _run, _end, events = await context.world.finished(name)
    calls = calls_of(events)
    if len(calls) != 1:
        raise fail(f"{len(calls)} tool calls, expected the one producing the {expected} result", events)
    d = data(completion(events, calls[0]))
    got = d.get("metadata", {}).get("format")
    if d.get("status") != "success" or got != expected:
        raise fail(f"the {d.get('tool_name')} result ended {d.get('status')!r} in format {got!r}, "
                   f"expected {expected!r}", events)


# -- sources, confidence and redaction --------------------------------------------------------

async def search_confidence(context, name: str) -> None:
    _run, _end, events = await context.world.finished(name)
    d = data(completion(events, the_call(events, (0, "search"))))
    confidence = d.get("metadata", {}).get("confidence")
    if not d.get("result"):
        raise fail("the search found nothing", events)
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 < confidence <= 1:
        raise fail(f"the search confidence is {confidence!r}, expected a number in (0, 1] for a search "
                   "with results", events)
    record_figure(context, f"search confidence {confidence}")


async def search_cites_corpus(context, name: str) -> None:
    _run, _end, events = await context.world.finished(name)
    d = data(completion(events, the_call(events, (0, "search"))))
    sources = _sources(events)
    if not sources or not all(isinstance(s, str) and s.startswith("corpus://") for s in sources):
        raise fail(f"the search results cite {sources!r}", events)
    if d.get("metadata", {}).get("source") != sources:
        raise fail(f"the search metadata cites {d.get('metadata', {}).get('source')!r}, its results {sources}",
                   events)


async def final_cites_the_search_sources(context, name: str) -> None:
    _run, end, events = await context.world.finished(name)
    final = [s.get("source") for s in (data(end).get("result") or {}).get("sources") or []]
    if not final or final != _sources(events):
        raise fail(f"the final result cites {final!r}; the search found {_sources(events)!r}", events)


async def result_redacted(context, name: str, tool_name: str) -> None:
    _run, _end, events = await context.world.finished(name)
    d = data(completion(events, the_call(events, (0, tool_name))))
    text = orjson.dumps(d.get("result")).decode()
    if "[REDACTED:email]" not in text or "[REDACTED:card]" not in text or "paid with card" not in text:
        raise fail(f"the result is not redacted as expected: {text[:300]}", events)
    if not isinstance(d.get("redactions"), int) or d["redactions"] < 2:
        raise fail(f"the completion counts {d.get('redactions')!r} redactions", events)


# -- caching, versions and chaining -----------------------------------------------------------

async def second_call_cached(context, name: str, tool_name: str) -> None:
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


async def name_their_tool_versions(context, name: str) -> None:
    _run, _end, events = await context.world.finished(name)
    done = tool_completions(events)
    by_tool: dict[str, set[Any]] = {}
    for f in done:
        by_tool.setdefault(data(f).get("tool_name"), set()).add(data(f).get("tool_version"))
    if not done or any(len(v) != 1 or not all(isinstance(x, str) and x for x in v) for v in by_tool.values()):
        raise fail(f"tool versions by tool: {by_tool}", events)


async def result_versions(context, name: str, tool_name: str, versions: str) -> None:
    _run, _end, events = await context.world.finished(name)
    expected = [int(v) for v in versions.replace(" and ", ", ").split(",")]
    got = [data(completion(events, c)).get("result_version") for c in calls_of(events, tool_name)]
    others = [data(f).get("result_version") for f in tool_completions(events)
              if data(f).get("tool_name") != tool_name]
    if got != expected or any(v != 1 for v in others):
        raise fail(f"{tool_name} result versions {got} (expected {expected}); other tools {others}", events)


async def names_the_call_it_continues(context, name: str, tool_name: str, source: str) -> None:
    _run, _end, events = await context.world.finished(name)
    origin = data(the_call(events, (0, source)))["tool_call_id"]
    call = the_call(events, (0, tool_name))
    named = (data(call).get("chained_from"), data(completion(events, call)).get("chained_from"))
    if named != (origin, origin):
        raise fail(f"{tool_name}'s events name {named}, expected {source}'s call {origin}", events)


async def param_is_the_earlier_result(context, name: str, tool_name: str, param: str, source: str) -> None:
    _run, _end, events = await context.world.finished(name)
    result = data(completion(events, the_call(events, (0, source)))).get("result")
    call = the_call(events, (0, tool_name))
    shown = data(call).get("parameters", {}).get(param)
    if result is None or shown != result:
        raise fail(f"{tool_name}'s {param} is {shown!r}; {source} returned {result!r}", events)
    if data(completion(events, call)).get("status") != "success":
        raise fail(f"{tool_name} did not succeed with the chained value", events)


# -- follow-ups and approvals -----------------------------------------------------------------

async def tools_recommend_next_steps(context, name: str) -> None:
    _run, _end, events = await context.world.finished(name)
    calls = calls_of(events)
    if [data(c).get("tool_name") for c in calls] != list(TOOL_FOLLOW_UP):
        raise fail(f"expected calls {list(TOOL_FOLLOW_UP)}", events)
    for call in calls:
        d = data(completion(events, call))
        if d.get("status") != "success" or d.get("follow_up") != TOOL_FOLLOW_UP[d.get("tool_name")]:
            raise fail(f"{d.get('tool_name')} completion recommends {d.get('follow_up')!r}", events)


async def run_recommends_next_steps(context, name: str) -> None:
    _run, end, events = await context.world.finished(name)
    if data(end).get("status") != "completed" or data(end).get("follow_up") != RUN_FOLLOW_UP:
        raise fail(f"the completion recommends {data(end).get('follow_up')!r}", events)


async def payment_only_after_approval(context, name: str) -> None:
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


async def completions_match_parallel_calls(context, name: str, n: int, m: int) -> None:
    _run, end, events = await context.world.finished(name)
    calls = calls_of(events)
    done = tool_completions(events)
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


# -- rollbacks and the audit ------------------------------------------------------------------

async def reservation_undone(context, name: str) -> None:
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
    failed = [f for f in tool_completions(events) if data(f).get("status") == "error"]
    if not failed or not failed[0].index < undo.index < end.index:
        raise fail("the rollback did not follow the failed step", events)


async def failed_payment_not_rolled_back(context, name: str) -> None:
    _run, _end, events = await context.world.finished(name)
    payment = call_for(events, PAY_CARD_PURPOSE)
    undone = [data(c).get("parameters", {}).get("tool_call_id") for c in calls_of(events, "undo")]
    if data(completion(events, payment)).get("status") != "error" or data(payment)["tool_call_id"] in undone:
        raise fail(f"the payment did not fail, or was rolled back: undone {undone}", events)


async def completions_audited(context, name: str) -> None:
    run, _end, events = await context.world.finished(name)
    person = context.world.person(name)
    done = tool_completions(events)
    if len(done) < 2:
        raise fail(f"{len(done)} tool completions; the run should have several", events)
    connection_id = established(run.client).data["connection_id"]
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
