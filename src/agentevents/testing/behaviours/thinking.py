"""The thinking scenarios (features/steps/thinking.py): their scripted behaviours and the checks of
what the user sees of the agent's reasoning. The reasoning is built from the functions here, and
the checks compare what arrived with the same functions, so a changed, lost, reordered or doubled
thought shows."""

from __future__ import annotations

import re

from hamcrest import assert_that, equal_to, has_length

from ..client import Frame, describe
from ..figures import record_figure
from ..matchers import follows_lifecycle, gapless_seqs, timestamp
from ..measures import human
from ..scripts import register, steps
from ..steps_support import RUN_TIMEOUT_S, runs_ended
from ..world import Run, World

TRUNCATION_MARKER = "…[truncated]"


def numbered_thought(i: int, n: int) -> str:
    return f"Thought {i} of {n}: weighing the next step."


def reasoning_step(i: int, n: int) -> str:
    return f"Step {i} of {n}: " + ("understand the question", "gather the facts", "compare the options",
                                   "check the numbers", "write the answer")[(i - 1) % 5] + "."


WRITINGS = {
    "Japanese": "東京の天気を確認しています。明日は晴れの予報です。",
    "Arabic": "أقوم بتحليل البيانات الآن، ثم سأكتب الملخص.",
    "German": "Die Größe der Straße überrascht mich: äöü ÄÖÜ ß, und ein Café (cafe\u0301).",
    "emoji": "Fertig 🎉 👩🏽‍💻 🇩🇪 ❤️ 🧑‍🤝‍🧑",
}

PII = {"email": "jane.doe@example.com", "card": "4111 1111 1111 1111",
       "token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJqYW5lLWRvZSJ9.c2lnbmF0dXJlLXZhbHVl"}
PII_THOUGHT = (f"The customer {PII['email']} paid with card {PII['card']} and sent the access token "
               f"{PII['token']} by mistake.")

STRUCTURED = {
    "phase": "comparison",
    "items": [{"name": "Plan A", "monthly_cost": 29.99, "fits": True, "tags": ["roaming", "5G"]},
              {"name": "Plan B", "monthly_cost": 19.5, "fits": False, "notes": None},
              {"name": "Plan Ç", "monthly_cost": 0, "fits": True, "tags": []}],
    "conclusion": {"choice": "Plan A", "confidence": 0.82, "reasons": ["coverage", "price"], "ranked": [1, 3, 2]},
}

ERROR_BEFORE = "Looking up today's exchange rate."
ERROR = {"code": "source_unavailable", "message": "the exchange-rate service did not answer"}
RECOVERY = "Recovering: the rate service is down, so I use yesterday's cached rate instead."

DRAFT = {"draft": "Paris is the capital of France.", "confidence": 0.6}

LONG_THOUGHTS = (
    "I compared the three phone plans. The second one is cheaper. It also includes roaming in the EU.",
    "Next I checked the contract terms. Two plans need 24 months. Only the third can be cancelled monthly.",
    "My recommendation is the third plan. It costs a little more. It keeps you free to leave.",
)


def long_thought(n: int) -> str:
    """n characters of varied prose, without digits (so no redaction rule applies)."""
    words = ("the agent keeps reasoning about the question and writes down every consideration "
             "it finds relevant, one after another, ").split()
    out, i = [], 0
    while sum(len(w) + 1 for w in out) < n + 1:
        out.append(words[i % len(words)])
        i += 1
    return " ".join(out)[:n]


def first_sentence(text: str) -> str:
    return text.split(". ")[0].rstrip(".") + "."


def _thinks_apart(n: int, pause: float) -> dict:
    items: list[dict] = []
    for i in range(1, n + 1):
        items.append({"think": numbered_thought(i, n)})
        if i < n:
            items.append({"sleep": pause})
    return steps(*items)


def _every(every: int, total: int) -> dict:
    items: list[dict] = [{"think": "Update 0: starting the long analysis."}]
    for i in range(1, total // every + 1):
        items += [{"sleep": every}, {"think": f"Update {i}: still analysing, {i * every} s in."}]
    return steps(*items)


register("thinks once", lambda: steps({"think": "A single, short thought."}))
register("thinks {n:d} times, {pause:g} seconds apart", _thinks_apart)
register("thinks every {every:d} seconds for {total:d} seconds", _every)
register("thinks {n:d} times in a quick burst", lambda n: steps({"burst": n, "text": "burst thought"}))
register("thinks {n:d} times as fast as it can", lambda n: steps({"burst": n, "text": "update"}))
register("reasons in {n:d} steps", lambda n: steps(*({"think": reasoning_step(i, n)} for i in range(1, n + 1))))
for _writing, _text in WRITINGS.items():
    register(f"reasons in {_writing}", lambda text=_text: steps({"think": text}))
register("reasons about a customer's email, card number and access token",
         lambda: steps({"think": PII_THOUGHT}))
register("reasons with structured details",
         lambda: steps({"think": "Comparing the plans side by side.", "metadata": STRUCTURED}))
register("hits an error while reasoning and recovers",
         lambda: steps({"think": ERROR_BEFORE}, {"error": ERROR}, {"think": RECOVERY},
                       {"complete": {"status": "completed", "result": {"rate": 1.08}, "summary": "Converted."}}))
register("drafts an answer, then works past its {limit:d}-second limit",
         lambda limit: steps({"think": "Drafting a first answer."}, {"partial": DRAFT}, {"sleep": limit + 10},
                             timeout_s=limit))
register("has a {n:d}-character thought", lambda n: steps({"think": long_thought(n)}))
register("reasons at length", lambda: steps(*({"think": t} for t in LONG_THOUGHTS)))




# -- reading the thoughts ---------------------------------------------------------------------

async def thoughts_of(world: World, name: str, timeout_s: float = RUN_TIMEOUT_S) -> list[Frame]:
    """Every thought of every run of the person, once all of them ended (in receive order)."""
    runs = world.runs_of(name)
    assert runs, f"{name} started no run"
    await runs_ended(runs, timeout_s)
    ids = {r.run_id for r in runs}
    return [f for f in world.events_of(name) if f.type == "agent_thinking" and f.data.get("run_id") in ids]


async def the_thought(world: World, name: str) -> Frame:
    """The person's one thought (her runs ended)."""
    thoughts = await thoughts_of(world, name)
    assert_that(thoughts, has_length(1), describe(world.frames_of(name)))
    return thoughts[0]


# -- content ----------------------------------------------------------------------------------

async def each_has_something_to_say(context, name: str) -> None:
    thoughts = await thoughts_of(context.world, name)
    assert thoughts, f"{name} received no thought\n{context.world.last_run(name).client.describe()}"
    empty_ones = [f for f in thoughts if not isinstance(f.data["data"].get("reasoning"), str)
                  or not f.data["data"]["reasoning"].strip()]
    assert not empty_ones, f"thoughts without reasoning:\n{describe(empty_ones)}"


async def each_has_its_fields(context, name: str) -> None:
    thoughts = await thoughts_of(context.world, name)
    assert thoughts, f"{name} received no thought\n{context.world.last_run(name).client.describe()}"
    for f in thoughts:
        data = f.data["data"]
        assert isinstance(data.get("reasoning"), str) and data["reasoning"], f"no reasoning text: {f.raw}"
        step = data.get("step")
        assert isinstance(step, int) and not isinstance(step, bool) and step >= 1, f"step is {step!r}: {f.raw}"
        assert isinstance(data.get("metadata"), dict), f"metadata is not an object: {f.raw}"


async def numbered_in_order(context, name: str, n: int) -> None:
    thoughts = await thoughts_of(context.world, name)
    got = [(f.data["data"]["step"], f.data["data"]["reasoning"]) for f in thoughts]
    assert_that(got, equal_to([(i, reasoning_step(i, n)) for i in range(1, n + 1)]), describe(thoughts))
    seqs = [f.data["seq"] for f in thoughts]
    assert seqs == sorted(set(seqs)), f"seqs not strictly increasing: {seqs}\n{describe(thoughts)}"


async def written_as_sent(context, name: str, writing: str) -> None:
    assert writing in WRITINGS, f"no thought written in {writing!r}; known: {sorted(WRITINGS)}"
    sent = WRITINGS[writing]
    thoughts = await thoughts_of(context.world, name)
    got = [f.data["data"]["reasoning"] for f in thoughts]
    assert_that(got, has_length(1), describe(thoughts))
    received = got[0]
    assert received.encode("utf-8") == sent.encode("utf-8"), \
        f"changed on the way:\n  sent     {sent.encode('utf-8')!r}\n  received {received.encode('utf-8')!r}\n" \
        + describe(thoughts)


async def pii_marked_redacted(context, name: str) -> None:
    thought = await the_thought(context.world, name)
    reasoning = thought.data["data"]["reasoning"]
    for kind in ("email", "card", "token"):
        assert f"[REDACTED:{kind}]" in reasoning, f"no [REDACTED:{kind}] in:\n{describe([thought])}"


async def no_pii_originals(context, name: str) -> None:
    world = context.world
    await thoughts_of(world, name)
    await world.quiet(world.person(name).clients)
    originals = [*PII.values(), PII["card"].replace(" ", ""), PII["email"].split("@")[0] + "@"]
    leaked = [(o, f) for f in world.frames_of(name) for o in originals if o in f.raw]
    assert not leaked, "originals in frames:\n" + "\n".join(f"  {o!r} in #{f.index} {f.raw[:200]}" for o, f in leaked)


async def structured_unchanged(context, name: str) -> None:
    thought = await the_thought(context.world, name)
    assert_that(thought.data["data"]["metadata"], equal_to(STRUCTURED), describe([thought]))


async def cut_with_marker(context, name: str, n: int, limit: int) -> None:
    thought = await the_thought(context.world, name)
    thoughts = [thought]
    reasoning = thought.data["data"]["reasoning"]
    assert len(reasoning) == limit, f"the thought has {len(reasoning)} characters, not {limit}\n{describe(thoughts)}"
    assert reasoning.endswith(TRUNCATION_MARKER), \
        f"no truncation marker at the end: ...{reasoning[-40:]!r}\n{describe(thoughts)}"
    kept = reasoning[: -len(TRUNCATION_MARKER)]
    assert long_thought(n).startswith(kept), \
        f"the kept part is not the start of the original thought\n{describe(thoughts)}"


async def told_truncated(context, name: str, n: int) -> None:
    thought = await the_thought(context.world, name)
    data = thought.data["data"]
    assert data.get("truncated") is True, f"truncated is {data.get('truncated')!r}: {thought.raw[:300]}"
    assert_that(data.get("full_length"), equal_to(n), describe([thought]))


async def each_says_its_kind(context, name: str) -> None:
    thoughts = await thoughts_of(context.world, name)
    assert thoughts, f"{name} received no thought"
    missing = [f for f in thoughts if not isinstance(f.data["data"].get("metadata", {}).get("kind"), str)
               or not f.data["data"]["metadata"]["kind"]]
    assert not missing, f"thoughts without a kind:\n{describe(missing)}"
    agents = {r.agent for r in context.world.runs_of(name)}
    thought_agents = {f.data["agent_name"] for f in thoughts}
    assert agents <= thought_agents, f"no thought from {sorted(agents - thought_agents)}\n{describe(thoughts)}"


async def confidences_in_range(context, name: str) -> None:
    thoughts = await thoughts_of(context.world, name)
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


async def thinkers_in_order(context, name: str, agents: list[str]) -> None:
    thoughts = await thoughts_of(context.world, name)
    assert_that([f.data["agent_name"] for f in thoughts], equal_to(agents), describe(thoughts))


# -- throttling and bursts --------------------------------------------------------------------

async def at_most(context, name: str, most: int, n: int) -> None:
    thoughts = await thoughts_of(context.world, name)
    record_figure(context, f"{n} updates condensed into {len(thoughts)} thoughts — limit {most}")
    assert 1 <= len(thoughts) <= most, f"{len(thoughts)} thoughts for {n} updates\n{describe(thoughts)}"


async def last_coalesced(context, name: str, n: int) -> None:
    thoughts = await thoughts_of(context.world, name)
    assert thoughts, f"{name} received no thought"
    last = thoughts[-1].data["data"]
    assert isinstance(last.get("coalesced"), int) and last["coalesced"] > 1, \
        f"the last thought stands for {last.get('coalesced')!r} updates: {thoughts[-1].raw}"
    assert_that(last["reasoning"], equal_to(f"update {n}"), describe(thoughts))
    _run, _end, events = await context.world.finished(name)
    types = [f.type for f in events]
    assert types[-2:] == ["agent_thinking", "agent_completed"], \
        f"the last thought is not right before the end: {types[-3:]}\n{describe(events)}"


async def account_for_all(context, name: str, n: int) -> None:
    thoughts = await thoughts_of(context.world, name)
    counts = [f.data["data"].get("coalesced", 1) for f in thoughts]
    record_figure(context, f"the {len(thoughts)} thoughts stand for {sum(counts)} updates (largest: {max(counts)})")
    assert_that(sum(counts), equal_to(n), describe(thoughts))


async def whole_burst(context, name: str, n: int) -> None:
    thoughts = await thoughts_of(context.world, name)
    assert_that([f.data["data"]["reasoning"] for f in thoughts],
                equal_to([f"burst thought {i}" for i in range(1, n + 1)]), describe(thoughts))
    coalesced = [f for f in thoughts if "coalesced" in f.data["data"]]
    assert not coalesced, f"thoughts of the burst were coalesced:\n{describe(coalesced)}"
    assert_that(thoughts, gapless_seqs())


# -- context of a second run ------------------------------------------------------------------

async def two_runs_ended(world: World, name: str) -> tuple[Run, Run]:
    """The person's last two runs, in one conversation, once the second ended."""
    runs = world.runs_of(name)
    assert len(runs) >= 2, f"{name} started {len(runs)} run(s); the check needs two"
    first, second = runs[-2], runs[-1]
    assert first.thread_id == second.thread_id, "the two runs are not in the same conversation"
    await second.client.wait_run_end(second.run_id, RUN_TIMEOUT_S)
    return first, second


async def continues_numbering(context, name: str) -> None:
    first, second = await two_runs_ended(context.world, name)
    before = first.client.events(run_id=first.run_id)
    after = second.client.events(run_id=second.run_id)
    assert before and after, f"a run delivered nothing\n{second.client.describe()}"
    assert_that(before, gapless_seqs(start=1))
    assert_that(after, gapless_seqs(start=before[-1].data["seq"] + 1))


async def refers_to_earlier(context, name: str) -> None:
    first, second = await two_runs_ended(context.world, name)
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


# -- timing -----------------------------------------------------------------------------------

async def each_within(context, name: str, limit: float) -> None:
    thoughts = await thoughts_of(context.world, name)
    assert thoughts, f"{name} received no thought"
    # The timestamp is cut to the millisecond: at most 1 ms of the delay is rounding.
    delays = [f.wall - timestamp(f).timestamp() for f in thoughts]
    record_figure(context, f"slowest thought reached {name} {human(max(delays))} after it was stamped (fastest "
                           f"{human(min(delays))}, {len(delays)} thoughts) — limit {human(limit)}")
    late = [(d, f) for d, f in zip(delays, thoughts, strict=True) if d > limit]
    assert not late, "late thoughts:\n" + "\n".join(f"  {d * 1000:.1f} ms {f.raw[:120]}" for d, f in late)


async def open_for_the_whole_run(context, name: str) -> None:
    run, _end, _events = await context.world.finished(name, timeout_s=120)
    answer = await run.client.request({"type": "ping"})
    assert answer.type == "pong" and run.client.connected, \
        f"the connection closed: {run.client.close_code} {run.client.close_reason}"
    assert_that(run.client.events(run_id=run.run_id), follows_lifecycle())


async def regular_updates(context, name: str, n: int, gap: float) -> None:
    _run, _end, events = await context.world.finished(name, timeout_s=120)
    thoughts = [f for f in events if f.type == "agent_thinking"]
    assert_that(len(thoughts), equal_to(n), describe(events))
    assert_that([f.data["data"]["reasoning"].split(":")[0] for f in thoughts],
                equal_to([f"Update {i}" for i in range(n)]), describe(thoughts))
    times = [events[0].at] + [f.at for f in thoughts]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    record_figure(context, f"largest gap between {name}'s updates {human(max(gaps))} over "
                           f"{human(times[-1] - times[0])} — limit {human(gap)}")
    assert max(gaps) <= gap, f"gaps between thoughts: {[round(g, 2) for g in gaps]}\n{describe(events)}"


async def stopped_at_limit(context, name: str, slack: float, limit: int) -> None:
    _run, end, events = await context.world.finished(name, timeout_s=limit + 30)
    assert_that(end.data["data"]["status"], equal_to("timeout"), describe(events))
    took = end.at - events[0].at
    record_figure(context, f"{name}'s run stopped {human(took - limit)} after its {limit}-second limit "
                           f"({human(took)} after it started) — limit {human(slack)}")
    assert limit - 0.05 <= took <= limit + slack, \
        f"ended {took:.2f} s after starting; the limit is {limit} s\n{describe(events)}"


async def timeout_delivers_draft(context) -> None:
    run = context.world.last_run()
    end = await run.client.wait_run_end(run.run_id, 30)
    data = end.data["data"]
    assert_that(data["result"], equal_to(DRAFT), run.client.describe())
    summary = data.get("summary") or ""
    assert re.search(r"limit|time", summary, re.I), f"no explanation of the timeout: {end.raw}"


# -- errors and recovery ----------------------------------------------------------------------

async def error_is_recoverable(context, name: str) -> None:
    _run, end, events = await context.world.finished(name)
    errors = [f for f in events if f.type == "agent_error"]
    assert_that(errors, has_length(1), describe(events))
    data = errors[0].data["data"]
    assert data.get("recoverable") is True, f"the error is not recoverable: {errors[0].raw}"
    assert_that(data.get("code"), equal_to(ERROR["code"]), describe(events))
    assert ERROR["code"] in (end.data["data"].get("recovered_from") or []), \
        f"the completion does not say it recovered from {ERROR['code']}: {end.raw[:400]}"


async def recovery_explained(context) -> None:
    run = context.world.last_run()
    await run.client.wait_run_end(run.run_id, RUN_TIMEOUT_S)
    events = run.client.events(run_id=run.run_id)
    types = [f.type for f in events]
    assert "agent_error" in types, describe(events)
    after = events[types.index("agent_error") + 1]
    assert after.type == "agent_thinking", f"after the error came {after.type}\n{describe(events)}"
    assert_that(after.data["data"]["reasoning"], equal_to(RECOVERY), describe(events))


# -- personalization --------------------------------------------------------------------------

def _texts_and_styles(thoughts: list[Frame]) -> list[tuple[str, str | None]]:
    return [(f.data["data"]["reasoning"], f.data["data"]["metadata"].get("style")) for f in thoughts]


async def concise(context, name: str) -> None:
    thoughts = await thoughts_of(context.world, name)
    got = _texts_and_styles(thoughts)
    assert_that(got, equal_to([(first_sentence(t), "concise") for t in LONG_THOUGHTS]), describe(thoughts))
    _run, end, _events = await context.world.finished(name)
    assert "thinking_style" in (end.data["data"].get("personalized_for") or []), \
        f"the completion does not say it was personalized: {end.raw[:400]}"


async def full_text(context, name: str) -> None:
    thoughts = await thoughts_of(context.world, name)
    got = _texts_and_styles(thoughts)
    assert_that(got, equal_to([(t, None) for t in LONG_THOUGHTS]), describe(thoughts))
