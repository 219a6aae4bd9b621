"""Steps about how runs end: agent_completed's status, result, summary, counts and extras
(plan tests T081-T100)."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter

from behave import given, then, when
from hamcrest import assert_that, equal_to

from agentevents.testing.behaviours.completion import FIRST_SENTENCE, FULL_SUMMARY
from agentevents.testing.client import Frame, describe
from agentevents.testing.figures import record_figure
from agentevents.testing.matchers import timestamp
from agentevents.testing.measures import human
from agentevents.testing.parse_types import register_all
from agentevents.testing.scripts import script_for
from agentevents.testing.steps_support import RUN_TIMEOUT_S, answer_approval, approval_request, runs_ended
from agentevents.testing.world import Run

register_all()


# -- helpers ---------------------------------------------------------------------------------

def expect(condition: bool, problem: str, frames: list[Frame]) -> None:
    """Fail with the problem and the frames received."""
    if not condition:
        raise AssertionError(f"{problem}\n{describe(frames)}")


def of_type(events: list[Frame], event_type: str) -> list[Frame]:
    return [f for f in events if f.type == event_type]


def tool_results(events: list[Frame]) -> list[Frame]:
    return of_type(events, "tool_completed")


def recovered_codes(events: list[Frame]) -> list[str]:
    """Error codes the user saw and the run went past: recoverable agent errors and failed tools."""
    codes = [f.data["data"]["code"] for f in of_type(events, "agent_error") if f.data["data"].get("recoverable")]
    return codes + [f.data["data"]["error"]["code"] for f in tool_results(events)
                    if f.data["data"]["status"] not in ("success", "rolled_back") and f.data["data"].get("error")]


# -- given / when ----------------------------------------------------------------------------

@given("{name:Person} prefers brief summaries")
def step_prefers_brief(context, name):
    context.world.person(name).preferences.update({"summary_style": "brief"})


def tier_allowance(world, name: str) -> int:
    """How many runs at once the person's tier allows, as the target's profile declares."""
    return world.target.limits.runs_per_tier[world.person(name).tier]


@when("{name:Person} starts as many agents at once as {her:Possessive} tier allows, that each {behaviour}")
async def step_start_many(context, name, her, behaviour):
    world = context.world
    count = tier_allowance(world, name)
    client = world.person(name).client
    options = script_for(behaviour)
    sent = time.monotonic()
    answers = await asyncio.gather(*(client.start_agent("scripted", behaviour, options=options)
                                     for _ in range(count)))
    for answer in answers:
        if answer.type == "run_accepted":
            world.runs.append(Run(name, "scripted", answer.data["run_id"], answer.data["thread_id"], sent,
                                  client, answer))
    world.notes.setdefault("batches", {}).setdefault(name, []).append(answers)


def accepted_batch(world, name, count, problem):
    """The person's last batch of starts, each of which must have been accepted."""
    client = world.person(name).client
    batch = world.notes["batches"][name][-1]
    refused = [a.raw for a in batch if a.type != "run_accepted"]
    expect(len(batch) == count and not refused, f"{problem}: {refused}", client.frames)
    return client, batch


@when("{name:Person} tries to start one more agent while those are still going")
async def step_one_more(context, name):
    count = tier_allowance(context.world, name)
    client, batch = accepted_batch(context.world, name, count, f"not all {count} runs were accepted")
    answer = await client.start_agent("scripted", "one more", options=script_for("works quietly for 0.2 seconds"))
    if answer.type == "run_accepted":  # let the extra run end before failing, so it cannot spill over
        await client.wait_run_end(answer.data["run_id"], RUN_TIMEOUT_S)
    context.world.notes["one_more"] = (answer, {a.data["run_id"] for a in batch})


@when("all of {name:Person}'s runs have finished")
async def step_all_finished(context, name):
    await runs_ended(context.world.runs_of(name))


@when("{name:Person}'s run has finished")
async def step_run_finished(context, name):
    await context.world.finished(name)


@when("{name:Person} {approved:Answer} the agent's request once it has waited for {her:Possessive} answer")
async def step_answer_after_wait(context, name, approved, her):
    """The answer comes only after the agent has shown it waits: nothing of the run may arrive
    between the approval request and a ping answered after it (plus a grace)."""
    world = context.world
    run = world.last_run(name)
    asked = await approval_request(run)
    await world.quiet([run.client])
    went_on = [f for f in run.client.events(run_id=run.run_id) if f.index > asked.index]
    world.notes["approval_wait"] = (asked, went_on)
    await answer_approval(run, approved)


@when('{name:Person} asks the data analyst "{message}" while the database is paused')
async def step_analyst_without_database(context, name, message):
    world = context.world
    await world.target.control.fault("pause", "postgres")
    try:
        # The SQL call gives up after 1 s instead of its usual timeout.
        run = await world.start(name, "data_analyst", message, options={"tool_timeout_s": 1})
        await run.client.wait_run_end(run.run_id, RUN_TIMEOUT_S)
    finally:
        await world.target.control.fault("resume", "postgres")


# -- then ------------------------------------------------------------------------------------

@then("the summary of {name:Person}'s completion names the calculation {she:Pronoun} saw and its answer {value:d}")
async def step_summary_describes(context, name, she, value):
    _run, end, events = await context.world.finished(name)
    done = end.data["data"]
    calls = of_type(events, "tool_executing")
    expect(len(calls) == 1, f"expected one calculation, saw {len(calls)} tool calls", events)
    expression = calls[0].data["data"]["parameters"]["expression"]
    summary = done.get("summary")
    expect(isinstance(summary, str) and expression in summary and str(value) in summary,
           f"summary {summary!r} does not name the calculation {expression!r} and its answer {value}", events)


@then("{name:Person}'s completion counts exactly the tool calls and events that reached {her:Objective}")
async def step_counts_match(context, name, her):
    _run, end, events = await context.world.finished(name)
    done = end.data["data"]
    started = of_type(events, "tool_executing")
    finished = of_type(events, "tool_completed")
    expect(len(started) >= 1, "the run used no tool, so its tool count proves nothing", events)
    expect(done.get("tool_calls") == len(started) == len(finished),
           f"completion says {done.get('tool_calls')} tool calls; received {len(started)} tool_executing and "
           f"{len(finished)} tool_completed", events)
    expect(done.get("event_count") == len(events),
           f"completion says {done.get('event_count')} events; {len(events)} arrived (completion included)", events)


@then('{name:Person}\'s research answer mentions "{text}"')
async def step_answer_mentions(context, name, text):
    _run, end, events = await context.world.finished(name)
    done = end.data["data"]
    answer = (done.get("result") or {}).get("answer") if isinstance(done.get("result"), dict) else None
    expect(isinstance(answer, str) and text in answer, f"answer {answer!r} does not mention {text!r}", events)


@then("{name:Person}'s completion cites the knowledge-base sources {her:Possessive} search found")
async def step_cites_sources(context, name, her):
    _run, end, events = await context.world.finished(name)
    done = end.data["data"]
    searches = [f for f in tool_results(events) if f.data["data"]["tool_name"] == "search"]
    expect(len(searches) == 1 and searches[0].data["data"]["status"] == "success",
           "expected one successful search", events)
    found = [hit["source"] for hit in searches[0].data["data"]["result"]]
    cited = [s.get("source") for s in (done.get("result") or {}).get("sources") or []]
    expect(len(cited) >= 1, "the completion cites no source", events)
    expect(all(isinstance(s, str) and s.startswith("corpus://") for s in cited),
           f"cited sources {cited} are not knowledge-base (corpus://) sources", events)
    expect(cited == found, f"cited sources {cited} differ from what the search found {found}", events)


@then("{name:Person}'s completion suggests what to do next")
async def step_follow_up(context, name):
    _run, end, events = await context.world.finished(name)
    done = end.data["data"]
    follow_up = done.get("follow_up")
    expect(isinstance(follow_up, list) and len(follow_up) >= 1
           and all(isinstance(s, str) and s.strip() for s in follow_up),
           f"follow_up is {follow_up!r}, not a list of suggestions", events)


@then("{name:Person}'s completion suggests starting the {agent:Agent} agent next")
async def step_follow_up_agent(context, name, agent):
    _run, end, events = await context.world.finished(name)
    done = end.data["data"]
    follow_up = done.get("follow_up")
    expect(isinstance(follow_up, list) and any(isinstance(s, str) and agent in s for s in follow_up),
           f"follow_up {follow_up!r} does not suggest the {agent} agent", events)
    recommended = (done.get("result") or {}).get("recommended_agent")
    expect(recommended == agent, f"the result recommends {recommended!r}, not {agent!r}", events)


@then("{name:Person}'s run reports a duration of at least {minimum:Duration}, within {tolerance:Duration} "
      "of the time between its first and last event")
async def step_duration(context, name, minimum, tolerance):
    _run, end, events = await context.world.finished(name)
    done = end.data["data"]
    span_ms = (timestamp(events[-1]) - timestamp(events[0])).total_seconds() * 1000
    reported = done.get("duration_ms")
    record_figure(context, f"{name}'s run reported {reported} ms; its first to last event {span_ms:.0f} ms apart "
                           f"— at least {human(minimum)}, within {human(tolerance)}")
    expect(isinstance(reported, int) and reported >= minimum * 1000,
           f"duration_ms {reported!r} is under {minimum * 1000:.0f} ms", events)
    expect(abs(reported - span_ms) <= tolerance * 1000,
           f"duration_ms {reported} differs from the event span {span_ms:.0f} ms by more than "
           f"{tolerance * 1000:.0f} ms", events)


@then("the extra agent was refused because {name:Person} already had as many runs going as {her:Possessive} "
      "tier allows")
async def step_run_limit(context, name, her):
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


@then("all of {name:Person}'s new runs are accepted and complete")
async def step_new_runs(context, name):
    count = tier_allowance(context.world, name)
    client, batch = accepted_batch(context.world, name, count, "runs were refused after the earlier ones ended")
    for answer in batch:
        end = await client.wait_run_end(answer.data["run_id"], RUN_TIMEOUT_S)
        expect(end.data["data"]["status"] == "completed", f"run ended {end.data['data']['status']}", client.frames)


@then("{name:Person}'s completion explains that no source was found")
async def step_no_source(context, name):
    _run, end, events = await context.world.finished(name)
    done = end.data["data"]
    searches = [f for f in tool_results(events) if f.data["data"]["tool_name"] == "search"]
    expect(len(searches) == 1 and searches[0].data["data"]["status"] == "success"
           and searches[0].data["data"]["result"] == [],
           "expected one successful search with no hits", events)
    result = done.get("result") or {}
    expect(result.get("sources") == [], f"the completion claims sources {result.get('sources')!r}", events)
    summary = done.get("summary") or ""
    expect(bool(re.search(r"\b(nothing|no source|not find|no match)", summary.lower())),
           f"summary {summary!r} does not explain that nothing was found", events)


@then("{name:Person}'s runs in the conversation complete as iterations 1 and 2")
async def step_iterations(context, name):
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


@then("{name:Person}'s completion lists {names} as contributors")
async def step_contributors(context, name, names):
    _run, end, events = await context.world.finished(name)
    done = end.data["data"]
    wanted = sorted(re.split(r",\s*|\s+and\s+", names.strip()))
    listed = done.get("contributors")
    expect(isinstance(listed, list) and sorted(listed) == wanted,
           f"contributors {listed!r}, expected {wanted}", events)


@then("every contributor authored events {name:Person} received, and no one else did")
async def step_contributors_authored(context, name):
    run, end, events = await context.world.finished(name)
    done = end.data["data"]
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


@then("{name:Person}'s completion assesses its quality with a confidence between 0 and 1 and a method")
async def step_quality(context, name):
    _run, end, events = await context.world.finished(name)
    done = end.data["data"]
    expect(done.get("status") == "completed", f"the run ended {done.get('status')}", events)
    quality = done.get("quality")
    expect(isinstance(quality, dict), f"quality is {quality!r}", events)
    confidence = quality.get("confidence")
    expect(isinstance(confidence, int | float) and not isinstance(confidence, bool) and 0 <= confidence <= 1,
           f"confidence {confidence!r} is not a number in [0, 1]", events)
    method = quality.get("method")
    expect(isinstance(method, str) and method.strip() != "", f"method {method!r} is empty", events)


@then("{name:Person}'s summary is one sentence, personalised for {her:Possessive} summary style")
async def step_brief_summary(context, name, her):
    _run, end, events = await context.world.finished(name)
    done = end.data["data"]
    expect(done.get("summary") == FIRST_SENTENCE,
           f"summary {done.get('summary')!r} is not the one-sentence {FIRST_SENTENCE!r}", events)
    expect(done.get("personalized_for") == ["summary_style"],
           f"personalized_for is {done.get('personalized_for')!r}", events)


@then("{name:Person}'s summary is the agent's full summary, not personalised")
async def step_full_summary(context, name):
    _run, end, events = await context.world.finished(name)
    done = end.data["data"]
    expect(done.get("summary") == FULL_SUMMARY, f"summary {done.get('summary')!r} is not the full summary", events)
    expect("personalized_for" not in done, f"personalized_for is {done.get('personalized_for')!r}", events)


@then("{name:Person}'s completion records what was learned from its best source")
async def step_learnings(context, name):
    _run, end, events = await context.world.finished(name)
    done = end.data["data"]
    learnings = done.get("learnings")
    expect(isinstance(learnings, list) and len(learnings) >= 1
           and all(isinstance(x, str) and x.strip() for x in learnings),
           f"learnings is {learnings!r}", events)
    sources = (done.get("result") or {}).get("sources") or []
    expect(bool(sources), "the completion cites no source to learn from", events)
    best = sources[0].get("title")
    expect(any(best in x for x in learnings), f"learnings {learnings!r} do not name the best source {best!r}",
           events)


@then("the metrics in {name:Person}'s completion equal the events, tool calls and time {she:Pronoun} received")
async def step_metrics(context, name, she):
    _run, end, events = await context.world.finished(name)
    done = end.data["data"]
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
    span_ms = (timestamp(events[-1]) - timestamp(events[0])).total_seconds() * 1000
    record_figure(context, f"{name}'s completion counts {metrics.get('events_before_completion')} events and "
                           f"{metrics.get('duration_ms')} ms; {she} received {len(before)} events over "
                           f"{span_ms:.0f} ms — allowed 150 ms apart")
    expect(metrics.get("duration_ms") == done.get("duration_ms") and abs(metrics["duration_ms"] - span_ms) <= 150,
           f"metrics duration_ms {metrics.get('duration_ms')} vs completion {done.get('duration_ms')} and event "
           f"span {span_ms:.0f} ms", events)


@then("the last event before {name:Person}'s completion is an error the run cannot recover from")
async def step_fatal_error(context, name):
    _run, _end, events = await context.world.finished(name)
    expect(len(events) >= 2 and events[-2].type == "agent_error", "no agent_error right before the completion",
           events)
    expect(events[-2].data["data"].get("recoverable") is False, "the error is marked recoverable", events)


@then('{name:Person}\'s completion reports the error code "{code}" that {she:Pronoun} was shown')
async def step_error_code(context, name, code, she):
    _run, end, events = await context.world.finished(name)
    done = end.data["data"]
    shown = [f.data["data"].get("code") for f in of_type(events, "agent_error")]
    expect(shown == [code], f"errors shown: {shown}, expected [{code!r}]", events)
    error = done.get("error") or {}
    expect(error.get("code") == code, f"the completion's error is {done.get('error')!r}", events)


@then("{name:Person}'s completion carries the partial result produced before the limit, promptly")
async def step_partial_result(context, name):
    run, end, events = await context.world.finished(name)
    done = end.data["data"]
    calcs = [f for f in tool_results(events) if f.data["data"]["tool_name"] == "calculator"]
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


@then("{name:Person}'s completion names the database as unavailable and keeps the rest of the analysis")
async def step_database_unavailable(context, name):
    _run, end, events = await context.world.finished(name)
    done = end.data["data"]
    sql = [f.data["data"] for f in tool_results(events) if f.data["data"]["tool_name"] == "sql_query"]
    expect(len(sql) == 1 and sql[0]["status"] != "success", "expected one failed SQL call", events)
    expect(done.get("unavailable") == ["database"], f"unavailable is {done.get('unavailable')!r}", events)
    expect("database" in (done.get("summary") or ""), f"summary {done.get('summary')!r} does not name it", events)
    result = done.get("result") or {}
    expect(bool(result.get("summary")) and "query" not in result,
           f"result keys {sorted(result)}: expected the dataset analysis only", events)


@then("{name:Person}'s completion records the tool errors {she:Pronoun} saw as recovered from")
async def step_recovered(context, name, she):
    _run, end, events = await context.world.finished(name)
    done = end.data["data"]
    seen = recovered_codes(events)
    expect(len(seen) >= 1, "no error was shown, so there was nothing to recover from", events)
    expect(sorted(done.get("recovered_from") or []) == sorted(seen),
           f"recovered_from {done.get('recovered_from')!r}, errors shown {seen}", events)
    results = tool_results(events)
    last_failure = max(i for i, f in enumerate(results) if f.data["data"]["status"] not in ("success", "rolled_back"))
    expect(any(f.data["data"]["status"] == "success" for f in results[last_failure + 1:]),
           "no tool succeeded after the last failure", events)


@then("{name:Person} was asked for approval, and the agent waited for {her:Possessive} answer")
async def step_asked(context, name, her):
    run = context.world.last_run(name)
    waited = context.world.notes.get("approval_wait")
    expect(waited is not None, f"{name} answered no approval request", run.client.frames)
    asked, went_on = waited
    question = asked.data["data"].get("question")
    expect(isinstance(question, str) and question.strip() != "" and asked.data["data"].get("approval_id"),
           f"the approval request has no question or id: {asked.raw}", run.client.frames)
    expect(not went_on, "the agent went on without an answer", went_on)


async def approval_listed(context, name: str, approved: bool) -> None:
    run, end, events = await context.world.finished(name)
    done = end.data["data"]
    asked = of_type(events, "approval_required")
    expect(len(asked) == 1, f"{len(asked)} approval requests", events)
    listed = done.get("approvals")
    expect(isinstance(listed, list) and len(listed) == 1, f"approvals is {listed!r}", events)
    expect(listed[0].get("approval_id") == asked[0].data["data"]["approval_id"]
           and listed[0].get("approved") is approved,
           f"approvals {listed!r} do not record approval {asked[0].data['data']['approval_id']} as {approved}",
           events)


@then("{name:Person}'s completion lists the approval {she:Pronoun} gave")
async def step_approval_given(context, name, she):
    await approval_listed(context, name, True)


@then("{name:Person}'s completion lists the approval {she:Pronoun} declined")
async def step_approval_declined(context, name, she):
    await approval_listed(context, name, False)


@then("the agent did no work after {name:Person} answered")
async def step_no_work_after_decline(context, name):
    _run, _end, events = await context.world.finished(name)
    asked = [i for i, f in enumerate(events) if f.type == "approval_required"]
    expect(len(asked) == 1, "expected one approval request", events)
    after = [f.type for f in events[asked[0] + 1:]]
    expect(after == ["agent_completed"], f"after the answer the agent still sent {after}", events)


@then("the agent made the transfer after {name:Person} answered")
async def step_transfer_after_approval(context, name):
    _run, _end, events = await context.world.finished(name)
    asked = [i for i, f in enumerate(events) if f.type == "approval_required"]
    expect(len(asked) == 1, "expected one approval request", events)
    before = [f for f in events[:asked[0]] if f.type.startswith("tool_")]
    expect(not before, "the agent used a tool before the approval", events)
    after = [f.data["data"] for f in events[asked[0] + 1:] if f.type == "tool_completed"]
    expect(len(after) == 1 and after[0].get("tool_name") == "calculator" and after[0].get("status") == "success",
           f"after the approval the agent's transfer ended {after}", events)


@then("{name:Person} sees each booking undone, newest first, after the failed payment")
async def step_rolled_back(context, name):
    _run, _end, events = await context.world.finished(name)
    results = [f.data["data"] for f in tool_results(events)]
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
