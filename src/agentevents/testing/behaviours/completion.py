"""The completion scenarios (features/steps/completion.py): their scripted behaviours ("works quietly
for 2 seconds", "needs her approval to transfer money") and the checks of how a run ends, its
agent_completed's status, result, summary, counts and extras, against what the user received.

Every check waits for the run's agent_completed (``World.finished``) and fails with the problem and
the frames received.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from typing import Any

from hamcrest import assert_that, equal_to

from ..client import Frame, describe
from ..figures import record_figure
from ..matchers import timestamp
from ..measures import human
from ..scripts import complete, register, steps
from ..steps_support import RUN_TIMEOUT_S, answer_approval, approval_request
from ..toolcalls import fail, tool_completions
from ..world import Run, World

FULL_SUMMARY = ("Compared three suppliers on price and delivery time. Supplier B is cheapest overall. "
                "Orders can be placed from Monday.")
FIRST_SENTENCE = "Compared three suppliers on price and delivery time."


def _quiet(seconds: float) -> dict[str, Any]:
    return steps({"think": "Waiting for the report to be ready."}, {"sleep": seconds})


for _verb in ("works", "work"):
    register(_verb + " quietly for {seconds:g} seconds", _quiet)
    register(_verb + " quietly for {seconds:g} second", _quiet)


def _thinks_and_calculates(thoughts: int, calculations: int) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    for i in range(max(thoughts, calculations)):
        if i < thoughts:
            items.append({"think": f"Considering part {i + 1} of the bill."})
        if i < calculations:
            items.append({"tool": "calculator", "params": {"expression": f"{i + 2}*7"}, "purpose": "add up a part"})
    return steps(*items)


register("thinks {thoughts:d} times and uses the calculator {calculations:d} times", _thinks_and_calculates)

register("summarises its work in three sentences",
         lambda: steps({"think": "Comparing the suppliers."},
                       complete(result={"cheapest": "Supplier B"}, summary=FULL_SUMMARY)))

register("calculates a total, then overruns a {limit:g}-second limit",
         lambda limit: steps({"think": "Adding up the invoices."},
                             {"tool": "calculator", "params": {"expression": "120+80+45"},
                              "purpose": "total of the invoices"},
                             {"think": "Now checking every invoice against the ledger."},
                             {"sleep": 30}, timeout_s=limit))

register("hits a failing tool, then succeeds with another one",
         lambda: steps({"think": "Fetching today's exchange rate."},
                       {"tool": "fail", "params": {"code": "upstream_unavailable",
                                                   "message": "the rate service is down"}},
                       {"think": "The rate service failed; computing the amount from the stored rate instead."},
                       {"tool": "calculator", "params": {"expression": "100*1.08"}, "purpose": "convert the amount"}))

register("needs her approval to transfer money",
         lambda: steps({"think": "Preparing a transfer of 100 EUR to Bob."},
                       {"approval": "May I transfer 100 EUR to Bob?", "timeout_s": 15},
                       {"tool": "calculator", "params": {"expression": "100+2.5"},
                        "purpose": "transfer the amount with its fee"}))

register("books two items, fails the payment, rolls back and retries",
         lambda: steps({"think": "Booking the flight and the hotel, then paying."},
                       {"tool": "calculator", "params": {"expression": "2*150"}, "purpose": "book the flight"},
                       {"tool": "calculator", "params": {"expression": "3*80"}, "purpose": "book the hotel"},
                       {"tool": "fail", "params": {"code": "payment_declined", "message": "the card was declined"}},
                       {"rollback": "payment declined"},
                       {"think": "Retrying the whole booking with the backup card."},
                       {"tool": "calculator", "params": {"expression": "2*150+3*80"},
                        "purpose": "book flight and hotel together"}))




# -- reading a run's end ----------------------------------------------------------------------

def expect(condition: bool, problem: str, frames: list[Frame]) -> None:
    """Fail with the problem and the frames received."""
    if not condition:
        raise fail(problem, frames)


def of_type(events: list[Frame], event_type: str) -> list[Frame]:
    return [f for f in events if f.type == event_type]


def recovered_codes(events: list[Frame]) -> list[str]:
    """Error codes the user saw and the run went past: recoverable agent errors and failed tools."""
    codes = [f.data["data"]["code"] for f in of_type(events, "agent_error") if f.data["data"].get("recoverable")]
    return codes + [f.data["data"]["error"]["code"] for f in tool_completions(events)
                    if f.data["data"]["status"] not in ("success", "rolled_back") and f.data["data"].get("error")]


async def ended(world: World, name: str) -> tuple[Run, dict[str, Any], list[Frame]]:
    """The person's last run once it ended: the run, its agent_completed's data, and its events."""
    run, end, events = await world.finished(name)
    return run, end.data["data"], events


def tier_allowance(world: World, name: str) -> int:
    """How many runs at once the person's tier allows, as the target's profile declares."""
    return world.target.limits.runs_per_tier[world.person(name).tier]


def accepted_batch(world: World, name: str, count: int, problem: str):
    """The person's last batch of starts, each of which must have been accepted."""
    client = world.person(name).client
    batch = world.notes["batches"][name][-1]
    refused = [a.raw for a in batch if a.type != "run_accepted"]
    expect(len(batch) == count and not refused, f"{problem}: {refused}", client.frames)
    return client, batch


# -- what the person does ---------------------------------------------------------------------

async def start_allowed_batch(context, name: str, behaviour: str, options: dict[str, Any]) -> None:
    """Start as many scripted runs at once as the person's tier allows; the answers are kept as a batch."""
    world = context.world
    count = tier_allowance(world, name)
    client = world.person(name).client
    sent = time.monotonic()
    answers = await asyncio.gather(*(client.start_agent("scripted", behaviour, options=options)
                                     for _ in range(count)))
    for answer in answers:
        if answer.type == "run_accepted":
            world.runs.append(Run(name, "scripted", answer.data["run_id"], answer.data["thread_id"], sent,
                                  client, answer))
    world.notes.setdefault("batches", {}).setdefault(name, []).append(answers)


async def start_one_more(context, name: str, options: dict[str, Any]) -> None:
    """While the whole batch runs, ask for one more run; the answer is kept."""
    count = tier_allowance(context.world, name)
    client, batch = accepted_batch(context.world, name, count, f"not all {count} runs were accepted")
    answer = await client.start_agent("scripted", "one more", options=options)
    if answer.type == "run_accepted":  # let the extra run end before failing, so it cannot spill over
        await client.wait_run_end(answer.data["run_id"], RUN_TIMEOUT_S)
    context.world.notes["one_more"] = (answer, {a.data["run_id"] for a in batch})


async def answer_after_wait(context, name: str, approved: bool) -> None:
    """The answer comes only after the agent has shown it waits: nothing of the run may arrive
    between the approval request and a ping answered after it (plus a grace)."""
    world = context.world
    run = world.last_run(name)
    asked = await approval_request(run)
    await world.quiet([run.client])
    went_on = [f for f in run.client.events(run_id=run.run_id) if f.index > asked.index]
    world.notes["approval_wait"] = (asked, went_on)
    await answer_approval(run, approved)


async def ask_analyst_without_database(context, name: str, message: str) -> None:
    world = context.world
    await world.target.control.fault("pause", "postgres")
    try:
        # The SQL call gives up after 1 s instead of its usual timeout.
        run = await world.start(name, "data_analyst", message, options={"tool_timeout_s": 1})
        await run.client.wait_run_end(run.run_id, RUN_TIMEOUT_S)
    finally:
        await world.target.control.fault("resume", "postgres")


# -- what the completion says -----------------------------------------------------------------

async def summary_names_calculation(context, name: str, value: int) -> None:
    _run, done, events = await ended(context.world, name)
    calls = of_type(events, "tool_executing")
    expect(len(calls) == 1, f"expected one calculation, saw {len(calls)} tool calls", events)
    expression = calls[0].data["data"]["parameters"]["expression"]
    summary = done.get("summary")
    expect(isinstance(summary, str) and expression in summary and str(value) in summary,
           f"summary {summary!r} does not name the calculation {expression!r} and its answer {value}", events)


async def counts_what_arrived(context, name: str) -> None:
    _run, done, events = await ended(context.world, name)
    started = of_type(events, "tool_executing")
    finished = of_type(events, "tool_completed")
    expect(len(started) >= 1, "the run used no tool, so its tool count proves nothing", events)
    expect(done.get("tool_calls") == len(started) == len(finished),
           f"completion says {done.get('tool_calls')} tool calls; received {len(started)} tool_executing and "
           f"{len(finished)} tool_completed", events)
    expect(done.get("event_count") == len(events),
           f"completion says {done.get('event_count')} events; {len(events)} arrived (completion included)", events)


async def answer_mentions(context, name: str, text: str) -> None:
    _run, done, events = await ended(context.world, name)
    answer = (done.get("result") or {}).get("answer") if isinstance(done.get("result"), dict) else None
    expect(isinstance(answer, str) and text in answer, f"answer {answer!r} does not mention {text!r}", events)


def _searches(events: list[Frame]) -> list[Frame]:
    return [f for f in tool_completions(events) if f.data["data"]["tool_name"] == "search"]


async def cites_found_sources(context, name: str) -> None:
    _run, done, events = await ended(context.world, name)
    searches = _searches(events)
    expect(len(searches) == 1 and searches[0].data["data"]["status"] == "success",
           "expected one successful search", events)
    found = [hit["source"] for hit in searches[0].data["data"]["result"]]
    cited = [s.get("source") for s in (done.get("result") or {}).get("sources") or []]
    expect(len(cited) >= 1, "the completion cites no source", events)
    expect(all(isinstance(s, str) and s.startswith("corpus://") for s in cited),
           f"cited sources {cited} are not knowledge-base (corpus://) sources", events)
    expect(cited == found, f"cited sources {cited} differ from what the search found {found}", events)


async def suggests_next_steps(context, name: str) -> None:
    _run, done, events = await ended(context.world, name)
    follow_up = done.get("follow_up")
    expect(isinstance(follow_up, list) and len(follow_up) >= 1
           and all(isinstance(s, str) and s.strip() for s in follow_up),
           f"follow_up is {follow_up!r}, not a list of suggestions", events)


async def suggests_agent(context, name: str, agent: str) -> None:
    _run, done, events = await ended(context.world, name)
    follow_up = done.get("follow_up")
    expect(isinstance(follow_up, list) and any(isinstance(s, str) and agent in s for s in follow_up),
           f"follow_up {follow_up!r} does not suggest the {agent} agent", events)
    recommended = (done.get("result") or {}).get("recommended_agent")
    expect(recommended == agent, f"the result recommends {recommended!r}, not {agent!r}", events)


def _span_ms(events: list[Frame]) -> float:
    """From the first event's timestamp to the last's, in milliseconds."""
    return (timestamp(events[-1]) - timestamp(events[0])).total_seconds() * 1000


async def duration_matches_events(context, name: str, minimum: float, tolerance: float) -> None:
    _run, done, events = await ended(context.world, name)
    span_ms = _span_ms(events)
    reported = done.get("duration_ms")
    record_figure(context, f"{name}'s run reported {reported} ms; its first to last event {span_ms:.0f} ms apart "
                           f"— at least {human(minimum)}, within {human(tolerance)}")
    expect(isinstance(reported, int) and reported >= minimum * 1000,
           f"duration_ms {reported!r} is under {minimum * 1000:.0f} ms", events)
    expect(abs(reported - span_ms) <= tolerance * 1000,
           f"duration_ms {reported} differs from the event span {span_ms:.0f} ms by more than "
           f"{tolerance * 1000:.0f} ms", events)


async def one_more_refused(context, name: str) -> None:
    count = tier_allowance(context.world, name)
    record_figure(context, f"{name}'s run number {count + 1} refused on the {context.world.person(name).tier} tier "
                           f"— limit {count} at once")
    client = context.world.person(name).client
    one_more = context.world.notes.get("one_more")
    expect(one_more is not None, f"{name} did not try to start one more agent", client.frames)
    answer, running = one_more
    expect(len(running) == count, f"{len(running)} runs were going, not {count}", client.frames)
    expect(answer.type == "error" and answer.data.get("code") == "too_many_runs",
           f"run number {count + 1} was not refused as too many runs: {answer.raw}", client.frames)
    ended_before = [f for f in client.frames[:answer.index]
                    if f.type == "agent_completed" and f.data.get("run_id") in running]
    expect(not ended_before, "some runs had already ended before the check, so it proves nothing", client.frames)


async def new_batch_completes(context, name: str) -> None:
    count = tier_allowance(context.world, name)
    client, batch = accepted_batch(context.world, name, count, "runs were refused after the earlier ones ended")
    for answer in batch:
        end = await client.wait_run_end(answer.data["run_id"], RUN_TIMEOUT_S)
        expect(end.data["data"]["status"] == "completed", f"run ended {end.data['data']['status']}", client.frames)


async def explains_no_source(context, name: str) -> None:
    _run, done, events = await ended(context.world, name)
    searches = _searches(events)
    expect(len(searches) == 1 and searches[0].data["data"]["status"] == "success"
           and searches[0].data["data"]["result"] == [],
           "expected one successful search with no hits", events)
    result = done.get("result") or {}
    expect(result.get("sources") == [], f"the completion claims sources {result.get('sources')!r}", events)
    summary = done.get("summary") or ""
    expect(bool(re.search(r"\b(nothing|no source|not find|no match)", summary.lower())),
           f"summary {summary!r} does not explain that nothing was found", events)


async def iterations_one_and_two(context, name: str) -> None:
    runs = context.world.runs_of(name)
    frames = context.world.frames_of(name)
    expect(len(runs) == 2 and runs[0].thread_id == runs[1].thread_id,
           "expected two runs in one thread", frames)
    iterations = []
    for run in runs:
        _run, end, _events = await context.world.finished(name, run)
        done = end.data["data"]
        iterations.append(done.get("iteration"))
    assert_that(iterations, equal_to([1, 2]), describe(frames))


async def lists_contributors(context, name: str, names: str) -> None:
    _run, done, events = await ended(context.world, name)
    wanted = sorted(re.split(r",\s*|\s+and\s+", names.strip()))
    listed = done.get("contributors")
    expect(isinstance(listed, list) and sorted(listed) == wanted,
           f"contributors {listed!r}, expected {wanted}", events)


async def contributors_authored(context, name: str) -> None:
    run, done, events = await ended(context.world, name)
    listed = set(done.get("contributors") or [])
    expect(bool(listed), "the completion lists no contributors", events)
    authors = Counter(f.data.get("agent_name") for f in events
                      if f.type not in ("agent_started", "agent_completed"))
    silent = sorted(listed - set(authors))
    expect(not silent, f"contributors {silent} produced none of the events received", events)
    strangers = sorted(set(authors) - listed)
    expect(not strangers, f"events came from agents not credited: {strangers}", events)
    ends = {f.data.get("agent_name") for f in events if f.type in ("agent_started", "agent_completed")}
    expect(ends == {run.agent}, f"the run is opened and closed by {ends}, not the {run.agent} agent", events)


async def assesses_quality(context, name: str) -> None:
    _run, done, events = await ended(context.world, name)
    expect(done.get("status") == "completed", f"the run ended {done.get('status')}", events)
    quality = done.get("quality")
    expect(isinstance(quality, dict), f"quality is {quality!r}", events)
    confidence = quality.get("confidence")
    expect(isinstance(confidence, int | float) and not isinstance(confidence, bool) and 0 <= confidence <= 1,
           f"confidence {confidence!r} is not a number in [0, 1]", events)
    method = quality.get("method")
    expect(isinstance(method, str) and method.strip() != "", f"method {method!r} is empty", events)


async def brief_summary(context, name: str) -> None:
    _run, done, events = await ended(context.world, name)
    expect(done.get("summary") == FIRST_SENTENCE,
           f"summary {done.get('summary')!r} is not the one-sentence {FIRST_SENTENCE!r}", events)
    expect(done.get("personalized_for") == ["summary_style"],
           f"personalized_for is {done.get('personalized_for')!r}", events)


async def full_summary(context, name: str) -> None:
    _run, done, events = await ended(context.world, name)
    expect(done.get("summary") == FULL_SUMMARY, f"summary {done.get('summary')!r} is not the full summary", events)
    expect("personalized_for" not in done, f"personalized_for is {done.get('personalized_for')!r}", events)


async def learned_from_best_source(context, name: str) -> None:
    _run, done, events = await ended(context.world, name)
    learnings = done.get("learnings")
    expect(isinstance(learnings, list) and len(learnings) >= 1
           and all(isinstance(x, str) and x.strip() for x in learnings),
           f"learnings is {learnings!r}", events)
    sources = (done.get("result") or {}).get("sources") or []
    expect(bool(sources), "the completion cites no source to learn from", events)
    best = sources[0].get("title")
    expect(any(best in x for x in learnings), f"learnings {learnings!r} do not name the best source {best!r}",
           events)


async def metrics_match(context, name: str, she: str) -> None:
    _run, done, events = await ended(context.world, name)
    metrics = done.get("metrics")
    expect(isinstance(metrics, dict), f"metrics is {metrics!r}", events)
    before = events[:-1]
    received = dict(sorted(Counter(f.type for f in before).items()))
    expect(metrics.get("event_counts") == received,
           f"event_counts {metrics.get('event_counts')} differ from received {received}", events)
    expect(metrics.get("events_before_completion") == len(before),
           f"events_before_completion {metrics.get('events_before_completion')}, received {len(before)}", events)
    tools = len(of_type(before, "tool_executing"))
    expect(tools >= 1 and metrics.get("tool_calls") == tools,
           f"metrics count {metrics.get('tool_calls')} tool calls, received {tools}", events)
    thinking = len(of_type(before, "agent_thinking"))
    expect(thinking >= 1 and metrics.get("thinking_events") == thinking,
           f"metrics count {metrics.get('thinking_events')} thinking events, received {thinking}", events)
    span_ms = _span_ms(events)
    record_figure(context, f"{name}'s completion counts {metrics.get('events_before_completion')} events and "
                           f"{metrics.get('duration_ms')} ms; {she} received {len(before)} events over "
                           f"{span_ms:.0f} ms — allowed 150 ms apart")
    expect(metrics.get("duration_ms") == done.get("duration_ms") and abs(metrics["duration_ms"] - span_ms) <= 150,
           f"metrics duration_ms {metrics.get('duration_ms')} vs completion {done.get('duration_ms')} and event "
           f"span {span_ms:.0f} ms", events)


async def ends_with_fatal_error(context, name: str) -> None:
    _run, _done, events = await ended(context.world, name)
    expect(len(events) >= 2 and events[-2].type == "agent_error", "no agent_error right before the completion",
           events)
    expect(events[-2].data["data"].get("recoverable") is False, "the error is marked recoverable", events)


async def reports_error_code(context, name: str, code: str) -> None:
    _run, done, events = await ended(context.world, name)
    shown = [f.data["data"].get("code") for f in of_type(events, "agent_error")]
    expect(shown == [code], f"errors shown: {shown}, expected [{code!r}]", events)
    error = done.get("error") or {}
    expect(error.get("code") == code, f"the completion's error is {done.get('error')!r}", events)


async def partial_result_promptly(context, name: str) -> None:
    run, done, events = await ended(context.world, name)
    calcs = [f for f in tool_completions(events) if f.data["data"]["tool_name"] == "calculator"]
    expect(len(calcs) == 1 and calcs[0].data["data"]["status"] == "success", "expected one calculation", events)
    produced = calcs[0].data["data"]["result"]
    expect(done.get("result") == {"last_tool": "calculator", "result": produced},
           f"result {done.get('result')!r} is not the partial result {produced!r}", events)
    limit_s = float(done.get("timeout_s") or 0)
    elapsed = events[-1].at - run.sent_at
    record_figure(context, f"{name}'s timeout completion {human(elapsed)} after the request — run limit "
                           f"{human(limit_s)}, allowed {human(limit_s + 1.0)}")
    expect(limit_s > 0 and elapsed <= limit_s + 1.0,
           f"the completion came {elapsed:.2f} s after the request; the limit is {limit_s:g} s", events)
    expect("limit" in (done.get("summary") or ""), f"summary {done.get('summary')!r} does not explain", events)


async def database_unavailable(context, name: str) -> None:
    _run, done, events = await ended(context.world, name)
    sql = [f.data["data"] for f in tool_completions(events) if f.data["data"]["tool_name"] == "sql_query"]
    expect(len(sql) == 1 and sql[0]["status"] != "success", "expected one failed SQL call", events)
    expect(done.get("unavailable") == ["database"], f"unavailable is {done.get('unavailable')!r}", events)
    expect("database" in (done.get("summary") or ""), f"summary {done.get('summary')!r} does not name it", events)
    result = done.get("result") or {}
    expect(bool(result.get("summary")) and "query" not in result,
           f"result keys {sorted(result)}: expected the dataset analysis only", events)


async def recovered_from_tool_errors(context, name: str) -> None:
    _run, done, events = await ended(context.world, name)
    seen = recovered_codes(events)
    expect(len(seen) >= 1, "no error was shown, so there was nothing to recover from", events)
    expect(sorted(done.get("recovered_from") or []) == sorted(seen),
           f"recovered_from {done.get('recovered_from')!r}, errors shown {seen}", events)
    results = tool_completions(events)
    last_failure = max(i for i, f in enumerate(results) if f.data["data"]["status"] not in ("success", "rolled_back"))
    expect(any(f.data["data"]["status"] == "success" for f in results[last_failure + 1:]),
           "no tool succeeded after the last failure", events)


# -- approvals and rollbacks ------------------------------------------------------------------

def asked_and_waited(context, name: str) -> None:
    run = context.world.last_run(name)
    waited = context.world.notes.get("approval_wait")
    expect(waited is not None, f"{name} answered no approval request", run.client.frames)
    asked, went_on = waited
    question = asked.data["data"].get("question")
    expect(isinstance(question, str) and question.strip() != "" and asked.data["data"].get("approval_id"),
           f"the approval request has no question or id: {asked.raw}", run.client.frames)
    expect(not went_on, "the agent went on without an answer", went_on)


async def lists_approval(context, name: str, approved: bool) -> None:
    _run, done, events = await ended(context.world, name)
    asked = of_type(events, "approval_required")
    expect(len(asked) == 1, f"{len(asked)} approval requests", events)
    listed = done.get("approvals")
    expect(isinstance(listed, list) and len(listed) == 1, f"approvals is {listed!r}", events)
    expect(listed[0].get("approval_id") == asked[0].data["data"]["approval_id"]
           and listed[0].get("approved") is approved,
           f"approvals {listed!r} do not record approval {asked[0].data['data']['approval_id']} as {approved}",
           events)


def _the_approval_request(events: list[Frame]) -> int:
    """Where the run's one approval request is among its events."""
    asked = [i for i, f in enumerate(events) if f.type == "approval_required"]
    expect(len(asked) == 1, "expected one approval request", events)
    return asked[0]


async def no_work_after_answer(context, name: str) -> None:
    _run, _done, events = await ended(context.world, name)
    asked = _the_approval_request(events)
    after = [f.type for f in events[asked + 1:]]
    expect(after == ["agent_completed"], f"after the answer the agent still sent {after}", events)


async def transfer_after_approval(context, name: str) -> None:
    _run, _done, events = await ended(context.world, name)
    asked = _the_approval_request(events)
    before = [f for f in events[:asked] if f.type.startswith("tool_")]
    expect(not before, "the agent used a tool before the approval", events)
    after = [f.data["data"] for f in events[asked + 1:] if f.type == "tool_completed"]
    expect(len(after) == 1 and after[0].get("tool_name") == "calculator" and after[0].get("status") == "success",
           f"after the approval the agent's transfer ended {after}", events)


async def bookings_undone_newest_first(context, name: str) -> None:
    _run, _done, events = await ended(context.world, name)
    results = [f.data["data"] for f in tool_completions(events)]
    failures = [i for i, r in enumerate(results) if r["status"] == "error"]
    expect(len(failures) == 1, f"expected one failed step, got {len(failures)}", events)
    failed_at = failures[0]
    booked = [r["tool_call_id"] for r in results[:failed_at] if r["status"] == "success"]
    expect(len(booked) == 2, f"expected two bookings before the failure, got {booked}", events)
    undos = [(i, r) for i, r in enumerate(results) if r["tool_name"] == "undo"]
    expect(all(i > failed_at for i, _r in undos), "an undo came before the failure", events)
    expect(all(r["status"] == "rolled_back" for _i, r in undos), "an undo is not rolled_back", events)
    undone = [r.get("compensates") for _i, r in undos]
    expect(undone == list(reversed(booked)), f"undone {undone}, expected {list(reversed(booked))}", events)
    expect(all((r.get("result") or {}).get("rolled_back") == r.get("compensates") for _i, r in undos),
           "an undo's result names another call than the one it compensates", events)
    retried = [r for r in results[undos[-1][0] + 1:] if r["status"] == "success"] if undos else []
    expect(bool(retried), "no successful retry after the rollback", events)
