"""The lifecycle scenarios (features/steps/lifecycle.py): a run's life against the odds. What a
start announces, refused and failed starts, expiring tokens, restarted gateways, cut networks and a
frozen database; and the scripted agent that "cannot be created".

Breaking a component (and healing it) and reading the archive go through the target's control
(``testing.control``).
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from hamcrest import assert_that, equal_to, has_length

from ...auth import issue_token
from ..client import Frame, RecordingClient, describe
from ..control import StoreUnavailable
from ..figures import record_figure
from ..matchers import follows_lifecycle, gapless_seqs, has_envelope
from ..measures import human
from ..netem import TcpProxy
from ..polling import poll
from ..scripts import register, steps
from ..steps_support import (
    RUN_TIMEOUT_S,
    established,
    handshake,
    quiet_each,
    reconnect_and_resume,
    runs_ended,
    schema_error,
)
from ..world import Run, World

# An expired token's close: the exp claim has whole seconds, the client's clock reads it a little late.
CLOSE_EARLY_S, CLOSE_LATE_S = 0.25, 2.0

register("cannot be created", lambda: steps(fail_on_init="the model behind this agent is not available"))


async def whole_run_once(world: World, name: str, timeout_s: float = RUN_TIMEOUT_S) -> tuple[Run, list[Frame]]:
    """The person's last run over all her connections: every event exactly once, in order."""
    run = world.last_run(name)
    clients = world.person(name).clients
    end = await clients[-1].wait_run_end(run.run_id, timeout_s)
    events = [f for c in clients for f in c.events(run_id=run.run_id)]
    assert_that(events, follows_lifecycle())
    assert_that(events, gapless_seqs(start=1))
    ids = [f.data["event_id"] for f in events]
    assert len(ids) == len(set(ids)), f"an event arrived twice\n{describe(events)}"
    assert_that(len(events), equal_to(end.data["data"]["event_count"]), describe(events))
    return run, events


# -- what a start announces -------------------------------------------------------------------

async def start_names_everyone(context, name: str, agent: str) -> None:
    world = context.world
    run = world.last_run(name)
    started = await run.client.wait_for(lambda f: f.type == "agent_started" and f.data.get("run_id") == run.run_id,
                                        5, "agent_started")
    assert_that(started.data["data"].get("agent_type"), equal_to(agent), run.client.describe())
    assert_that(started.data["agent_name"], equal_to(agent), run.client.describe())
    assert_that([started], has_envelope(user_id=world.person(name).user_id, thread_id=run.thread_id))
    assert_that(started.data["run_id"], equal_to(run.run_id), run.client.describe())


async def events_match_schema(context, event: str, name: str) -> None:
    world = context.world
    await runs_ended(world.runs_of(name))
    frames = [f for f in world.events_of(name) if f.type == event]
    assert frames, f"{name} received no {event}\n{world.person(name).client.describe()}"
    for frame in frames:
        problem = schema_error(frame)
        if problem is not None:
            raise AssertionError(f"{event} #{frame.index} does not match the schema: {problem}\n"
                                 f"{frame.raw[:600]}")


# -- refused and failed starts ----------------------------------------------------------------

async def could_not_start(context, name: str) -> None:
    run, end, _events = await context.world.finished(name)
    errors = run.client.events(run_id=run.run_id, types=("agent_error",))
    assert_that(errors, has_length(1), run.client.describe())
    data = errors[0].data["data"]
    assert_that(data.get("code"), equal_to("agent_init_failed"), run.client.describe())
    assert data.get("recoverable") is False, f"the error claims the run can go on: {errors[0].raw}"
    assert_that((end.data["data"].get("error") or {}).get("code"), equal_to("agent_init_failed"), run.client.describe())


async def ask_without_agent(context, name: str) -> None:
    client = context.world.person(name).client
    answer = await client.request({"type": "start_agent", "message": "Help me, please."})
    context.world.notes["answer"] = answer


async def ask_unknown_agent(context, name: str, agent: str) -> None:
    client = context.world.person(name).client
    answer = await client.request({"type": "start_agent", "agent_type": agent, "message": "Tell my fortune."})
    context.world.notes["answer"] = answer
    context.world.notes["unknown_agent"] = agent


def answer_to(world: World, name: str) -> Frame:
    """The answer to the person's last refused-or-not request."""
    answer = world.notes.get("answers", {}).get(name) or world.notes.get("answer")
    assert answer is not None, f"no request of {name}'s was answered"
    return answer


def _refused(world: World, name: str, code: str) -> Frame:
    answer = answer_to(world, name)
    assert answer.type == "error", f"the request was not refused: {answer.raw}"
    assert_that(answer.data.get("code"), equal_to(code), answer.raw)
    return answer


def told_malformed(context, name: str) -> None:
    answer = _refused(context.world, name, "malformed_message")
    assert "agent_type" in answer.data.get("message", ""), f"the error does not name the field: {answer.raw}"


def told_unknown(context, name: str) -> None:
    answer = _refused(context.world, name, "unknown_agent")
    agents = (answer.data.get("details") or {}).get("agents")
    assert isinstance(agents, list) and {"triage", "math", "research"} <= set(agents), \
        f"the error does not list the agents: {answer.raw}"
    assert context.world.notes["unknown_agent"] not in agents, f"the unknown agent is listed: {answer.raw}"


def refused_without(context, name: str, permission: str) -> None:
    permission = context.world.tokens.permission(permission)  # the backend's own name for it
    answer = _refused(context.world, name, "forbidden")
    named = (answer.data.get("details") or {}).get("required_permission") == permission \
        or permission in answer.data.get("message", "")
    assert named, f"the refusal does not name {permission!r}: {answer.raw}"


async def mistake_started_nothing(context, name: str) -> None:
    """Only the runs the scenario started are there: the refused request left no run behind."""
    world = context.world
    refused = answer_to(world, name)
    assert refused.type == "error", f"the mistaken request was not refused: {refused.raw}"
    await runs_ended(world.runs_of(name))
    await quiet_each(world, [name])
    known = {r.run_id for r in world.runs_of(name)}
    frames = world.frames_of(name)
    accepted = [f for f in frames if f.type == "run_accepted"]
    strays = [f for f in frames if (f.is_event or f.type == "run_accepted") and f.data.get("run_id") not in known]
    assert len(accepted) == len(known) and not strays, \
        f"a run started for the mistaken request ({len(accepted)} accepted, {len(known)} asked for):\n" \
        f"{describe(strays or accepted)}"


async def no_run_started(context, name: str) -> None:
    world = context.world
    await quiet_each(world, [name])
    started = [f for f in world.frames_of(name) if f.type in ("run_accepted", "agent_started") or f.is_event]
    assert not started, f"a run started for {name}:\n{describe(started)}"


# -- tokens -----------------------------------------------------------------------------------

def _token(world: World, victim: str, kind: str) -> str | None:
    """A "forged" token (signed with a key that is not the stack's), an "expired" one, or a "missing" one."""
    if kind == "forged":
        return issue_token(world.person(victim).user_id, key="a-key-that-is-not-the-stack-key-0123456789")
    if kind == "expired":
        return world.token_for(world.person(victim), ttl_s=-120)
    assert kind == "missing", f"no {kind!r} token"
    return None


async def try_to_connect_as(context, intruder: str, victim: str, kind: str) -> None:
    """One connection attempt as the victim with a forged, expired or missing token; its outcome
    (an HTTP status or "connected") is kept."""
    world = context.world
    outcome = await handshake(world, _token(world, victim, kind), f"{intruder}-{kind}")
    world.notes.setdefault("attempts", []).append((kind, outcome if isinstance(outcome, int) else "connected"))


def turned_away(context, status: int) -> None:
    attempts = context.world.notes.get("attempts", [])
    assert len(attempts) == 1, f"expected one attempt, got {attempts}"
    kind, outcome = attempts[0]
    assert outcome == status, f"the connection with a {kind} token was not refused with {status}: {outcome}"


async def closed_when_token_expired(context, name: str, her: str) -> None:
    client = context.world.person(name).client
    expires_at = established(client).data["token_expires_at"]
    code = await client.wait_closed(30)
    closed_at = time.time()
    grace = context.world.target.limits.token_grace_s
    record_figure(context, f"{name}'s connection closed {human(closed_at - expires_at)} after {her} token expired "
                           f"— grace {human(grace)}")
    assert_that(code, equal_to(3002), client.describe())
    # Both sides of the promise: the grace is given in full, and the close comes soon after it.
    assert closed_at >= expires_at + grace - CLOSE_EARLY_S, \
        f"closed {closed_at - expires_at:.2f} s after the token expired: the {grace:g} s grace was not given"
    assert closed_at <= expires_at + grace + CLOSE_LATE_S, \
        f"closed {closed_at - expires_at:.2f} s after the token expired: more than {CLOSE_LATE_S:g} s past the grace"
    context.world.notes.setdefault("closed_at", {})[name] = closed_at


async def stayed_past_first_token(context, name: str) -> None:
    world = context.world
    person = world.person(name)
    assert len(person.clients) == 1, f"{name} has {len(person.clients)} connections"
    client = person.client
    _run, events = await whole_run_once(world, name)
    expires_at = established(client).data["token_expires_at"]
    last = events[-1]
    assert last.wall > expires_at, \
        f"the run ended before the first token expired; the check proves nothing\n{describe(events)}"
    for other, closed_at in world.notes.get("closed_at", {}).items():
        assert last.wall > closed_at, \
            f"the run ended before {other} was closed; the check proves nothing\n{describe(events)}"
    answer = await client.request({"type": "ping"})
    assert answer.type == "pong" and client.connected, f"closed: {client.close_code} {client.close_reason}"


# -- gateway restart and network cut ----------------------------------------------------------

async def restart_gateway_mid_run(context, name: str) -> None:
    world = context.world
    run = world.last_run(name)
    client = run.client
    await client.wait_for(lambda f: f.type == "agent_thinking" and f.data.get("run_id") == run.run_id, 10,
                          "the first thought")
    assert not client.events(run_id=run.run_id, types=("agent_completed",)), \
        f"the run ended before the restart\n{client.describe()}"
    gateway = established(client).data["server_id"]
    asked = time.monotonic()
    await world.target.control.fault("restart", gateway)
    code = await client.wait_closed(10)
    record_figure(context, f"{gateway} restarted mid-run in {human(time.monotonic() - asked)}; {name}'s "
                           f"connection closed with code {code}")
    assert not client.events(run_id=run.run_id, types=("agent_completed",)), \
        f"the run ended before the connection closed; nothing was missed\n{client.describe()}"


def _proxy_url(world: World, proxy: TcpProxy) -> str:
    target = urlsplit(world.target.ws_url)
    return proxy.url(scheme=target.scheme, path=target.path)


async def connect_through_proxy(context, name: str) -> None:
    world = context.world
    target = urlsplit(world.target.ws_url)
    proxy = await TcpProxy(target.hostname, target.port).start()
    world.closers.append(proxy.close)
    world.notes.setdefault("proxies", {})[name] = proxy
    await world.connect(name, url=_proxy_url(world, proxy))


async def cut_after_thoughts(context, name: str, n: int) -> None:
    world = context.world
    run = world.last_run(name)
    client = run.client
    proxy = world.notes["proxies"][name]
    await client.wait_for(lambda f: len(client.events(run_id=run.run_id, types=("agent_thinking",))) >= n, 10,
                          f"{n} thoughts")
    assert not client.events(run_id=run.run_id, types=("agent_completed",)), \
        f"the run ended before the cut\n{client.describe()}"
    proxy.cut()
    await client.wait_closed(10)


async def reconnect_through_proxy(context, name: str) -> None:
    world = context.world
    await reconnect_and_resume(world, name, url=_proxy_url(world, world.notes["proxies"][name]))


async def resume_from_the_beginning(context, name: str) -> None:
    world = context.world
    run = world.last_run(name)
    client = await reconnect_and_resume(world, name, {run.thread_id: 0})
    world.notes.setdefault("new_connection", {})[name] = client


def new_connection(world: World, name: str) -> RecordingClient:
    client = world.notes.get("new_connection", {}).get(name)
    assert client is not None, f"{name} did not reconnect"
    return client


async def _on_new_connection(world: World, name: str) -> tuple[RecordingClient, Frame, list[Frame]]:
    """The person's new connection once it received the end of her last run and went quiet: the
    connection, the run's agent_completed and the run's events on it."""
    client = new_connection(world, name)
    run = world.last_run(name)
    end = await client.wait_run_end(run.run_id, RUN_TIMEOUT_S)
    await world.quiet([client])
    return client, end, client.events(run_id=run.run_id)


async def new_connection_started_once(context, name: str) -> None:
    client, _end, events = await _on_new_connection(context.world, name)
    assert_that([f for f in events if f.type == "agent_started"], has_length(1), client.describe())


async def new_connection_whole_run(context, name: str) -> None:
    client, end, events = await _on_new_connection(context.world, name)
    assert_that(events, follows_lifecycle())
    assert_that(events, gapless_seqs(start=1))
    assert_that(len(events), equal_to(end.data["data"]["event_count"]), client.describe())


async def whole_run_across_connections(context, name: str) -> None:
    world = context.world
    assert len(world.person(name).clients) >= 2, f"{name} never reconnected"
    await whole_run_once(world, name)
    for client in world.person(name).clients[:1]:
        assert not client.connected, f"the first connection was never broken\n{client.describe()}"


async def every_thought_once(context, name: str, n: int) -> None:
    world = context.world
    run = world.last_run(name)
    await world.person(name).clients[-1].wait_run_end(run.run_id, RUN_TIMEOUT_S)
    thoughts = [f for f in world.events_of(name, run_id=run.run_id) if f.type == "agent_thinking"]
    step_numbers = [f.data["data"]["step"] for f in thoughts]
    assert step_numbers == list(range(1, n + 1)), f"thought steps {step_numbers}, not 1..{n}\n{describe(thoughts)}"
    texts = [f.data["data"]["reasoning"] for f in thoughts]
    assert len(set(texts)) == len(texts), f"a thought arrived twice\n{describe(thoughts)}"


# -- PostgreSQL frozen ------------------------------------------------------------------------

async def pause_database(context) -> None:
    """Paused as a whole (docs/conformance.md §7.4): no answer on new connections, nor on the
    existing ones of the backend's own processes."""
    world = context.world
    control = world.target.control
    paused = True

    async def thaw() -> None:  # once: at the step that resumes it, or after the scenario
        nonlocal paused
        if paused:
            paused = False
            await control.fault("resume", "postgres")

    await control.fault("pause", "postgres")
    world.closers.append(thaw)
    world.notes["postgres_thaw"] = thaw


async def resume_database_after_run(context, name: str) -> None:
    """The run is served while the database is paused: it must end before the database resumes."""
    thaw = context.world.notes.get("postgres_thaw")
    assert thaw is not None, "the database was not paused"
    run = context.world.last_run(name)
    try:
        await run.client.wait_run_end(run.run_id, RUN_TIMEOUT_S)
    finally:
        await thaw()


async def archive_holds_run(context, name: str) -> None:
    world = context.world
    run, _end, _events = await world.finished(name)
    received = {f.data["seq"]: f.raw for f in run.client.events(run_id=run.run_id)}

    async def archived() -> dict[int, str]:
        try:
            found = await world.target.control.archived_events(run.thread_id, run_id=run.run_id)
        except StoreUnavailable:  # the database is still coming back: nothing archived yet
            return {}
        return {r["seq"]: r["payload"] for r in found}

    rows = await poll(archived, lambda rows: len(rows) >= len(received), 40, 0.5)
    record_figure(context, f"{len(rows)} of the {len(received)} events of {name}'s run archived once the "
                           "database was back")
    assert_that(sorted(rows), equal_to(sorted(received)), run.client.describe())
    changed = [seq for seq in received if rows[seq] != received[seq]]
    assert not changed, f"archived payloads differ from what was delivered for seqs {changed}"
