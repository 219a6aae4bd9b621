"""Steps about the agent's thinking: what the user sees of its reasoning, how much, how fast,
in which language, how long, with which details, for whom, and what is hidden.

The scripted behaviours below build the agent's reasoning from the functions in this module, and
the checks compare what arrived with the same functions: a changed, lost, reordered or doubled
thought shows.
"""

from __future__ import annotations

import re
from datetime import datetime

from behave import given, then
from hamcrest import assert_that, equal_to, has_length

from agentevents.testing.behaviours.thinking import (
    DRAFT,
    ERROR,
    LONG_THOUGHTS,
    PII,
    RECOVERY,
    STRUCTURED,
    WRITINGS,
    first_sentence,
    long_thought,
    reasoning_step,
)
from agentevents.testing.client import describe
from agentevents.testing.figures import record_figure
from agentevents.testing.matchers import follows_lifecycle, gapless_seqs
from agentevents.testing.measures import human
from agentevents.testing.parse_types import register_all
from agentevents.testing.steps_support import RUN_TIMEOUT_S, runs_ended

register_all()

TRUNCATION_MARKER = "…[truncated]"


# -- helpers --------------------------------------------------------------------------------------

async def _thoughts(context, name, timeout_s: float = RUN_TIMEOUT_S):
    """Every thought of every run of the person, once all of them ended (in receive order)."""
    world = context.world
    runs = world.runs_of(name)
    assert runs, f"{name} started no run"
    await runs_ended(runs, timeout_s)
    ids = {r.run_id for r in runs}
    return [f for f in world.events_of(name) if f.type == "agent_thinking" and f.data.get("run_id") in ids]


def _frames(context, name) -> str:
    """What the person's connections received, for assertion messages."""
    return describe(context.world.frames_of(name))


def _ts(frame) -> float:
    return datetime.fromisoformat(frame.data["timestamp"].replace("Z", "+00:00")).timestamp()


# -- content ---------------------------------------------------------------------------------------

@then("each of {name:Person}'s thoughts has something to say")
async def step_nonempty(context, name):
    thoughts = await _thoughts(context, name)
    assert thoughts, f"{name} received no thought\n{context.world.last_run(name).client.describe()}"
    empty_ones = [f for f in thoughts if not isinstance(f.data["data"].get("reasoning"), str)
                  or not f.data["data"]["reasoning"].strip()]
    assert not empty_ones, f"thoughts without reasoning:\n{describe(empty_ones)}"


@then("each of {name:Person}'s thoughts has its text, a step number from 1 and a details object")
async def step_thought_fields(context, name):
    thoughts = await _thoughts(context, name)
    assert thoughts, f"{name} received no thought\n{context.world.last_run(name).client.describe()}"
    for f in thoughts:
        data = f.data["data"]
        assert isinstance(data.get("reasoning"), str) and data["reasoning"], f"no reasoning text: {f.raw}"
        step = data.get("step")
        assert isinstance(step, int) and not isinstance(step, bool) and step >= 1, f"step is {step!r}: {f.raw}"
        assert isinstance(data.get("metadata"), dict), f"metadata is not an object: {f.raw}"


@then("{name:Person}'s thoughts arrive numbered 1 to {n:d}, in the order they were reasoned")
async def step_numbered_in_order(context, name, n):
    thoughts = await _thoughts(context, name)
    got = [(f.data["data"]["step"], f.data["data"]["reasoning"]) for f in thoughts]
    assert_that(got, equal_to([(i, reasoning_step(i, n)) for i in range(1, n + 1)]), describe(thoughts))
    seqs = [f.data["seq"] for f in thoughts]
    assert seqs == sorted(set(seqs)), f"seqs not strictly increasing: {seqs}\n{describe(thoughts)}"


@then("{name:Person} receives {her:Possessive} {writing} thought exactly as it was written")
async def step_multilingual(context, name, her, writing):
    assert writing in WRITINGS, f"no thought written in {writing!r}; known: {sorted(WRITINGS)}"
    sent = WRITINGS[writing]
    thoughts = await _thoughts(context, name)
    got = [f.data["data"]["reasoning"] for f in thoughts]
    assert_that(got, has_length(1), describe(thoughts))
    received = got[0]
    assert received.encode("utf-8") == sent.encode("utf-8"), \
        f"changed on the way:\n  sent     {sent.encode('utf-8')!r}\n  received {received.encode('utf-8')!r}\n" \
        + describe(thoughts)


@then("{name:Person}'s thought shows the email, the card number and the token as redacted")
async def step_redacted_markers(context, name):
    thoughts = await _thoughts(context, name)
    assert_that(thoughts, has_length(1), _frames(context, name))
    reasoning = thoughts[0].data["data"]["reasoning"]
    for kind in ("email", "card", "token"):
        assert f"[REDACTED:{kind}]" in reasoning, f"no [REDACTED:{kind}] in:\n{describe(thoughts)}"


@then("none of those originals appears in any frame {name:Person} received")
async def step_no_originals(context, name):
    world = context.world
    await _thoughts(context, name)
    await world.quiet(world.person(name).clients)
    originals = [*PII.values(), PII["card"].replace(" ", ""), PII["email"].split("@")[0] + "@"]
    leaked = [(o, f) for f in world.frames_of(name) for o in originals if o in f.raw]
    assert not leaked, "originals in frames:\n" + "\n".join(f"  {o!r} in #{f.index} {f.raw[:200]}" for o, f in leaked)


@then("{name:Person}'s thought carries its phase, items and conclusion unchanged")
async def step_structured(context, name):
    thoughts = await _thoughts(context, name)
    assert_that(thoughts, has_length(1), _frames(context, name))
    assert_that(thoughts[0].data["data"]["metadata"], equal_to(STRUCTURED), describe(thoughts))


@then("{name:Person}'s {n:d}-character thought arrives cut to {limit:d} characters with a truncation marker")
async def step_truncated_text(context, name, n, limit):
    thoughts = await _thoughts(context, name)
    assert_that(thoughts, has_length(1), _frames(context, name))
    reasoning = thoughts[0].data["data"]["reasoning"]
    assert len(reasoning) == limit, f"the thought has {len(reasoning)} characters, not {limit}\n{describe(thoughts)}"
    assert reasoning.endswith(TRUNCATION_MARKER), \
        f"no truncation marker at the end: ...{reasoning[-40:]!r}\n{describe(thoughts)}"
    kept = reasoning[: -len(TRUNCATION_MARKER)]
    assert long_thought(n).startswith(kept), \
        f"the kept part is not the start of the original thought\n{describe(thoughts)}"


@then("{name:Person} is told the thought was truncated from {n:d} characters")
async def step_truncated_flags(context, name, n):
    thoughts = await _thoughts(context, name)
    assert_that(thoughts, has_length(1), _frames(context, name))
    data = thoughts[0].data["data"]
    assert data.get("truncated") is True, f"truncated is {data.get('truncated')!r}: {thoughts[0].raw[:300]}"
    assert_that(data.get("full_length"), equal_to(n), describe(thoughts))


@then("every thought {name:Person} received says what kind of thinking it is")
async def step_kind(context, name):
    thoughts = await _thoughts(context, name)
    assert thoughts, f"{name} received no thought"
    missing = [f for f in thoughts if not isinstance(f.data["data"].get("metadata", {}).get("kind"), str)
               or not f.data["data"]["metadata"]["kind"]]
    assert not missing, f"thoughts without a kind:\n{describe(missing)}"
    agents = {r.agent for r in context.world.runs_of(name)}
    thought_agents = {f.data["agent_name"] for f in thoughts}
    assert agents <= thought_agents, f"no thought from {sorted(agents - thought_agents)}\n{describe(thoughts)}"


@then("every confidence in {name:Person}'s thoughts is a number between 0 and 1")
async def step_confidence(context, name):
    thoughts = await _thoughts(context, name)
    found = []
    for f in thoughts:
        meta = f.data["data"].get("metadata", {})
        if "confidence" in meta:
            value = meta["confidence"]
            ok = isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1
            assert ok, f"confidence {value!r} is not a number in [0, 1]: {f.raw}"
            found.append(value)
    assert found, f"no thought of {name} gives a confidence\n{describe(thoughts)}"
    record_figure(context, f"confidences in {name}'s thoughts: {', '.join(f'{c:g}' for c in found)}")


@then("{name:Person}'s thoughts come from the {a}, the {b} and the {c}, in that order")
async def step_team_order(context, name, a, b, c):
    thoughts = await _thoughts(context, name)
    assert_that([f.data["agent_name"] for f in thoughts], equal_to([a, b, c]), describe(thoughts))


# -- throttling and bursts -------------------------------------------------------------------------

@then("{name:Person} receives at most {most:d} thoughts for the {n:d} updates")
async def step_throttled_count(context, name, most, n):
    thoughts = await _thoughts(context, name)
    record_figure(context, f"{n} updates condensed into {len(thoughts)} thoughts — limit {most}")
    assert 1 <= len(thoughts) <= most, f"{len(thoughts)} thoughts for {n} updates\n{describe(thoughts)}"


@then("{name:Person}'s last thought stands for several updates and shows the text of update {n:d}")
async def step_last_coalesced(context, name, n):
    thoughts = await _thoughts(context, name)
    assert thoughts, f"{name} received no thought"
    last = thoughts[-1].data["data"]
    assert isinstance(last.get("coalesced"), int) and last["coalesced"] > 1, \
        f"the last thought stands for {last.get('coalesced')!r} updates: {thoughts[-1].raw}"
    assert_that(last["reasoning"], equal_to(f"update {n}"), describe(thoughts))
    _run, _end, events = await context.world.finished(name)
    types = [f.type for f in events]
    assert types[-2:] == ["agent_thinking", "agent_completed"], \
        f"the last thought is not right before the end: {types[-3:]}\n{describe(events)}"


@then("the thoughts {name:Person} received account for all {n:d} updates")
async def step_coalesced_sum(context, name, n):
    thoughts = await _thoughts(context, name)
    counts = [f.data["data"].get("coalesced", 1) for f in thoughts]
    record_figure(context, f"the {len(thoughts)} thoughts stand for {sum(counts)} updates (largest: {max(counts)})")
    assert_that(sum(counts), equal_to(n), describe(thoughts))


@then("{name:Person} receives all {n:d} thoughts of the burst, in order")
async def step_burst_complete(context, name, n):
    thoughts = await _thoughts(context, name)
    assert_that([f.data["data"]["reasoning"] for f in thoughts],
                equal_to([f"burst thought {i}" for i in range(1, n + 1)]), describe(thoughts))
    coalesced = [f for f in thoughts if "coalesced" in f.data["data"]]
    assert not coalesced, f"thoughts of the burst were coalesced:\n{describe(coalesced)}"
    assert_that(thoughts, gapless_seqs())


# -- context of a second run ------------------------------------------------------------------------

@given('{name:Person} has asked the {agent:Agent} agent "{message}" and seen the answer')
async def step_asked_and_answered(context, name, agent, message):
    run = await context.world.start(name, agent, message)
    await run.client.wait_run_end(run.run_id, RUN_TIMEOUT_S)


def _two_runs(context, name):
    runs = context.world.runs_of(name)
    assert len(runs) >= 2, f"{name} started {len(runs)} run(s); the check needs two"
    first, second = runs[-2], runs[-1]
    assert first.thread_id == second.thread_id, "the two runs are not in the same conversation"
    return first, second


@then("{name:Person}'s second run continues the conversation's numbering")
async def step_continues_numbering(context, name):
    first, second = _two_runs(context, name)
    await second.client.wait_run_end(second.run_id, RUN_TIMEOUT_S)
    before = first.client.events(run_id=first.run_id)
    after = second.client.events(run_id=second.run_id)
    assert before and after, f"a run delivered nothing\n{second.client.describe()}"
    assert_that(before, gapless_seqs(start=1))
    assert_that(after, gapless_seqs(start=before[-1].data["seq"] + 1))


@then("{name:Person}'s second run refers to the earlier run in its thinking")
async def step_refers_to_earlier(context, name):
    first, second = _two_runs(context, name)
    await second.client.wait_run_end(second.run_id, RUN_TIMEOUT_S)
    events = second.client.events(run_id=second.run_id)
    started = events[0]
    assert started.type == "agent_started", describe(events)
    ctx = started.data["data"].get("context", {})
    assert ctx.get("previous_runs") == 1 and ctx.get("previous_run_id") == first.run_id, \
        f"agent_started context is {ctx!r}, not 1 earlier run {first.run_id}"
    refer = [f for f in events if f.type == "agent_thinking"
             and f.data["data"].get("metadata", {}).get("previous_runs") == 1
             and first.run_id in f.data["data"]["reasoning"]]
    assert refer, f"no thought refers to the earlier run {first.run_id}\n{describe(events)}"


# -- timing ----------------------------------------------------------------------------------------

@then("each of {name:Person}'s thoughts reaches {her:Objective} within {limit:Duration} of being stamped")
async def step_thought_latency(context, name, her, limit):
    thoughts = await _thoughts(context, name)
    assert thoughts, f"{name} received no thought"
    # The timestamp is cut to the millisecond: at most 1 ms of the delay is rounding.
    delays = [f.wall - _ts(f) for f in thoughts]
    record_figure(context, f"slowest thought reached {name} {human(max(delays))} after it was stamped (fastest "
                           f"{human(min(delays))}, {len(delays)} thoughts) — limit {human(limit)}")
    late = [(d, f) for d, f in zip(delays, thoughts, strict=True) if d > limit]
    assert not late, "late thoughts:\n" + "\n".join(f"  {d * 1000:.1f} ms {f.raw[:120]}" for d, f in late)


@then("{name:Person}'s connection stays open for the whole run")
async def step_stays_open(context, name):
    run, _end, _events = await context.world.finished(name, timeout_s=120)
    answer = await run.client.request({"type": "ping"})
    assert answer.type == "pong" and run.client.connected, \
        f"the connection closed: {run.client.close_code} {run.client.close_reason}"
    assert_that(run.client.events(run_id=run.run_id), follows_lifecycle())


@then("every one of {name:Person}'s {n:d} thoughts arrives, none more than {gap:Duration} after the previous one")
async def step_regular_updates(context, name, n, gap):
    run, _end, events = await context.world.finished(name, timeout_s=120)
    thoughts = [f for f in events if f.type == "agent_thinking"]
    assert_that(len(thoughts), equal_to(n), describe(events))
    assert_that([f.data["data"]["reasoning"].split(":")[0] for f in thoughts],
                equal_to([f"Update {i}" for i in range(n)]), describe(thoughts))
    times = [events[0].at] + [f.at for f in thoughts]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    record_figure(context, f"largest gap between {name}'s updates {human(max(gaps))} over "
                           f"{human(times[-1] - times[0])} — limit {human(gap)}")
    assert max(gaps) <= gap, f"gaps between thoughts: {[round(g, 2) for g in gaps]}\n{describe(events)}"


@then("{name:Person}'s run is stopped with status timeout within {slack:Duration} after its {limit:d}-second limit")
async def step_timeout_prompt(context, name, slack, limit):
    _run, end, events = await context.world.finished(name, timeout_s=limit + 30)
    assert_that(end.data["data"]["status"], equal_to("timeout"), describe(events))
    took = end.at - events[0].at
    record_figure(context, f"{name}'s run stopped {human(took - limit)} after its {limit}-second limit "
                           f"({human(took)} after it started) — limit {human(slack)}")
    assert limit - 0.05 <= took <= limit + slack, \
        f"ended {took:.2f} s after starting; the limit is {limit} s\n{describe(events)}"


@then("the timeout still delivers the draft and explains what happened")
async def step_timeout_partial(context):
    run = context.world.last_run()
    end = await run.client.wait_run_end(run.run_id, 30)
    data = end.data["data"]
    assert_that(data["result"], equal_to(DRAFT), run.client.describe())
    summary = data.get("summary") or ""
    assert re.search(r"limit|time", summary, re.I), f"no explanation of the timeout: {end.raw}"


# -- errors and recovery ---------------------------------------------------------------------------

@then("the error tells {name:Person} the agent can carry on")
async def step_error_recoverable(context, name):
    _run, end, events = await context.world.finished(name)
    errors = [f for f in events if f.type == "agent_error"]
    assert_that(errors, has_length(1), describe(events))
    data = errors[0].data["data"]
    assert data.get("recoverable") is True, f"the error is not recoverable: {errors[0].raw}"
    assert_that(data.get("code"), equal_to(ERROR["code"]), describe(events))
    assert ERROR["code"] in (end.data["data"].get("recovered_from") or []), \
        f"the completion does not say it recovered from {ERROR['code']}: {end.raw[:400]}"


@then("the thought after the error explains the recovery")
async def step_recovery_thought(context):
    run = context.world.last_run()
    await run.client.wait_run_end(run.run_id, RUN_TIMEOUT_S)
    events = run.client.events(run_id=run.run_id)
    types = [f.type for f in events]
    assert "agent_error" in types, describe(events)
    after = events[types.index("agent_error") + 1]
    assert after.type == "agent_thinking", f"after the error came {after.type}\n{describe(events)}"
    assert_that(after.data["data"]["reasoning"], equal_to(RECOVERY), describe(events))


# -- personalization ------------------------------------------------------------------------------

@given("{name:Person} prefers concise thinking")
def step_prefers_concise(context, name):
    context.world.person(name).preferences.update({"thinking_style": "concise"})


@then("{name:Person}'s thoughts are one sentence each and marked as concise")
async def step_concise(context, name):
    thoughts = await _thoughts(context, name)
    got = [(f.data["data"]["reasoning"], f.data["data"]["metadata"].get("style")) for f in thoughts]
    assert_that(got, equal_to([(first_sentence(t), "concise") for t in LONG_THOUGHTS]), describe(thoughts))
    _run, end, _events = await context.world.finished(name)
    assert "thinking_style" in (end.data["data"].get("personalized_for") or []), \
        f"the completion does not say it was personalized: {end.raw[:400]}"


@then("{name:Person}'s thoughts are the full text")
async def step_full_text(context, name):
    thoughts = await _thoughts(context, name)
    got = [(f.data["data"]["reasoning"], f.data["data"]["metadata"].get("style")) for f in thoughts]
    assert_that(got, equal_to([(t, None) for t in LONG_THOUGHTS]), describe(thoughts))
