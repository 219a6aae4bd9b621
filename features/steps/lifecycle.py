"""Steps about a run's life against the odds: what a start announces, refused and failed
starts, expiring tokens, restarted gateways, cut networks and a frozen database.

@fault_control steps break a component of the backend (and heal it); @archive_query steps read
its archive. Both go through the target's control (``agentevents.testing.control``).
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from behave import given, then, when
from hamcrest import assert_that, equal_to, has_length

from agentevents.auth import issue_token
from agentevents.testing.client import HandshakeRefused, RecordingClient, describe
from agentevents.testing.control import StoreUnavailable
from agentevents.testing.figures import record_figure
from agentevents.testing.matchers import follows_lifecycle, gapless_seqs, has_envelope
from agentevents.testing.measures import human
from agentevents.testing.netem import TcpProxy
from agentevents.testing.parse_types import register_all
from agentevents.testing.polling import poll
from agentevents.testing.scripts import register, steps
from agentevents.testing.steps_support import RUN_TIMEOUT_S, reconnect_and_resume, runs_ended

register_all()

# An expired token's close: the exp claim has whole seconds, the client's clock reads it a little late.
CLOSE_EARLY_S, CLOSE_LATE_S = 0.25, 2.0

register("cannot be created", lambda: steps(fail_on_init="the model behind this agent is not available"))


# -- helpers -------------------------------------------------------------------------------------

async def _quiet(world, client) -> None:
    await world.quiet([client])


def _established(client: RecordingClient):
    for frame in client.frames:
        if frame.type == "connection_established":
            return frame
    raise AssertionError(f"{client.name} has no connection_established\n{client.describe()}")


async def _whole_run_once(world, name, timeout_s: float = RUN_TIMEOUT_S):
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


# -- what a start announces ---------------------------------------------------------------------

@then("{name:Person}'s agent_started names {her:Possessive} run, {her:Possessive} conversation, "
      "{herself:Reflexive} and the {agent:Agent} agent")
async def step_started_names(context, name, her, herself, agent):
    world = context.world
    run = world.last_run(name)
    started = await run.client.wait_for(lambda f: f.type == "agent_started" and f.data.get("run_id") == run.run_id,
                                        5, "agent_started")
    assert_that(started.data["data"].get("agent_type"), equal_to(agent), run.client.describe())
    assert_that(started.data["agent_name"], equal_to(agent), run.client.describe())
    assert_that([started], has_envelope(user_id=world.person(name).user_id, thread_id=run.thread_id))
    assert_that(started.data["run_id"], equal_to(run.run_id), run.client.describe())


@then("every {event:EventType} {name:Person} received matches the published schema")
async def step_schema(context, event, name):
    from jsonschema import ValidationError

    from agentevents.protocol.schemas import validate_server_frame
    world = context.world
    await runs_ended(world.runs_of(name))
    frames = [f for f in world.events_of(name) if f.type == event]
    assert frames, f"{name} received no {event}\n{world.person(name).client.describe()}"
    for frame in frames:
        try:
            validate_server_frame(frame.data)
        except ValidationError as exc:
            raise AssertionError(f"{event} #{frame.index} does not match the schema: {exc.message}\n"
                                 f"{frame.raw[:600]}") from None


# -- refused and failed starts ----------------------------------------------------------------------

@then("the error tells {name:Person} that the agent could not start")
async def step_init_failed(context, name):
    run, end, _events = await context.world.finished(name)
    errors = run.client.events(run_id=run.run_id, types=("agent_error",))
    assert_that(errors, has_length(1), run.client.describe())
    data = errors[0].data["data"]
    assert_that(data.get("code"), equal_to("agent_init_failed"), run.client.describe())
    assert data.get("recoverable") is False, f"the error claims the run can go on: {errors[0].raw}"
    assert_that((end.data["data"].get("error") or {}).get("code"), equal_to("agent_init_failed"), run.client.describe())


@when("{name:Person} asks to start an agent without saying which one")
async def step_start_without_agent(context, name):
    client = context.world.person(name).client
    answer = await client.request({"type": "start_agent", "message": "Help me, please."})
    context.world.notes["answer"] = answer


@when('{name:Person} asks for the "{agent}" agent, which does not exist')
async def step_start_unknown(context, name, agent):
    client = context.world.person(name).client
    answer = await client.request({"type": "start_agent", "agent_type": agent, "message": "Tell my fortune."})
    context.world.notes["answer"] = answer
    context.world.notes["unknown_agent"] = agent


def _answer(context, name):
    """The answer to the person's last refused-or-not request."""
    answer = context.world.notes.get("answers", {}).get(name) or context.world.notes.get("answer")
    assert answer is not None, f"no request of {name}'s was answered"
    return answer


@then("{name:Person} is told {her:Possessive} request is malformed because the agent type is missing")
async def step_malformed(context, name, her):
    answer = _answer(context, name)
    assert answer.type == "error", f"the request was not refused: {answer.raw}"
    assert_that(answer.data.get("code"), equal_to("malformed_message"), answer.raw)
    assert "agent_type" in answer.data.get("message", ""), f"the error does not name the field: {answer.raw}"


@then("{name:Person} is told the agent is unknown, with the list of agents {she:Pronoun} can use")
async def step_unknown(context, name, she):
    answer = _answer(context, name)
    assert answer.type == "error", f"the request was not refused: {answer.raw}"
    assert_that(answer.data.get("code"), equal_to("unknown_agent"), answer.raw)
    agents = (answer.data.get("details") or {}).get("agents")
    assert isinstance(agents, list) and {"triage", "math", "research"} <= set(agents), \
        f"the error does not list the agents: {answer.raw}"
    assert context.world.notes["unknown_agent"] not in agents, f"the unknown agent is listed: {answer.raw}"


@then('{name:Person} is refused because {she:Pronoun} lacks the "{permission}" permission')
async def step_forbidden(context, name, she, permission):
    permission = context.world.tokens.permission(permission)  # the backend's own name for it
    answer = _answer(context, name)
    assert answer.type == "error", f"the request was not refused: {answer.raw}"
    assert_that(answer.data.get("code"), equal_to("forbidden"), answer.raw)
    named = (answer.data.get("details") or {}).get("required_permission") == permission \
        or permission in answer.data.get("message", "")
    assert named, f"the refusal does not name {permission!r}: {answer.raw}"


@then("{name:Person}'s mistaken request started no run")
async def step_mistake_started_nothing(context, name):
    """Only the runs the scenario started are there: the refused request left no run behind."""
    world = context.world
    refused = _answer(context, name)
    assert refused.type == "error", f"the mistaken request was not refused: {refused.raw}"
    await runs_ended(world.runs_of(name))
    for client in world.person(name).clients:
        await _quiet(world, client)
    known = {r.run_id for r in world.runs_of(name)}
    frames = world.frames_of(name)
    accepted = [f for f in frames if f.type == "run_accepted"]
    strays = [f for f in frames if (f.is_event or f.type == "run_accepted") and f.data.get("run_id") not in known]
    assert len(accepted) == len(known) and not strays, \
        f"a run started for the mistaken request ({len(accepted)} accepted, {len(known)} asked for):\n" \
        f"{describe(strays or accepted)}"


@then("{name:Person} receives no agent_started")
async def step_no_run(context, name):
    world = context.world
    for client in world.person(name).clients:
        await _quiet(world, client)
    started = [f for f in world.frames_of(name) if f.type in ("run_accepted", "agent_started") or f.is_event]
    assert not started, f"a run started for {name}:\n{describe(started)}"


# -- tokens -----------------------------------------------------------------------------------------

@when("{intruder:Person} tries to connect as {victim:Person} with a forged token")
async def step_forged(context, intruder, victim):
    world = context.world
    token = issue_token(world.person(victim).user_id, key="a-key-that-is-not-the-stack-key-0123456789")
    await _attempt(world, intruder, "forged", token)


@when("{intruder:Person} tries to connect as {victim:Person} with an expired token")
async def step_expired(context, intruder, victim):
    world = context.world
    await _attempt(world, intruder, "expired", world.token_for(world.person(victim), ttl_s=-120))


@when("{intruder:Person} tries to connect as {victim:Person} without a token")
async def step_no_token(context, intruder, victim):
    await _attempt(context.world, intruder, "missing", None)


async def _attempt(world, intruder, kind, token) -> None:
    client = RecordingClient(world.target.ws_url, token, name=f"{intruder}-{kind}")
    try:
        await client.connect()
    except HandshakeRefused as exc:
        outcome = exc.status
    else:
        outcome = "connected"
        world.closers.append(client.close)
    world.notes.setdefault("attempts", []).append((kind, outcome))


@then("{name:Person} is turned away with HTTP {status:d}")
async def step_turned_away(context, name, status):
    attempts = context.world.notes.get("attempts", [])
    assert len(attempts) == 1, f"expected one attempt, got {attempts}"
    kind, outcome = attempts[0]
    assert outcome == status, f"the connection with a {kind} token was not refused with {status}: {outcome}"


@then("{name:Person}'s connection is closed because {her:Possessive} token expired")
async def step_closed_expired(context, name, her):
    client = context.world.person(name).client
    expires_at = _established(client).data["token_expires_at"]
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


@then("{name:Person} receives every event of {her:Possessive} run on the same connection, "
      "after {her:Possessive} first token expired")
async def step_stayed(context, name, her):
    world = context.world
    person = world.person(name)
    assert len(person.clients) == 1, f"{name} has {len(person.clients)} connections"
    client = person.client
    _run, events = await _whole_run_once(world, name)
    expires_at = _established(client).data["token_expires_at"]
    last = events[-1]
    assert last.wall > expires_at, \
        f"the run ended before the first token expired; the check proves nothing\n{describe(events)}"
    for other, closed_at in world.notes.get("closed_at", {}).items():
        assert last.wall > closed_at, \
            f"the run ended before {other} was closed; the check proves nothing\n{describe(events)}"
    answer = await client.request({"type": "ping"})
    assert answer.type == "pong" and client.connected, f"closed: {client.close_code} {client.close_reason}"


# -- gateway restart and network cut -------------------------------------------------------------------

@when("the gateway holding {name:Person}'s connection restarts after {her:Possessive} first thought")
async def step_restart_gateway(context, name, her):
    world = context.world
    run = world.last_run(name)
    client = run.client
    await client.wait_for(lambda f: f.type == "agent_thinking" and f.data.get("run_id") == run.run_id, 10,
                          "the first thought")
    assert not client.events(run_id=run.run_id, types=("agent_completed",)), \
        f"the run ended before the restart\n{client.describe()}"
    gateway = _established(client).data["server_id"]
    asked = time.monotonic()
    await world.target.control.fault("restart", gateway)
    code = await client.wait_closed(10)
    record_figure(context, f"{gateway} restarted mid-run in {human(time.monotonic() - asked)}; {name}'s "
                           f"connection closed with code {code}")
    assert not client.events(run_id=run.run_id, types=("agent_completed",)), \
        f"the run ended before the connection closed; nothing was missed\n{client.describe()}"


@given("{name:Person} is connected through an unreliable network")
async def step_via_proxy(context, name):
    world = context.world
    target = urlsplit(world.target.ws_url)
    proxy = await TcpProxy(target.hostname, target.port).start()
    world.closers.append(proxy.close)
    world.notes.setdefault("proxies", {})[name] = proxy
    await world.connect(name, url=proxy.url(scheme=target.scheme, path=target.path))


@when("the network link to {name:Person} is cut after {her:Possessive} {n:Ordinal} thought")
async def step_cut(context, name, her, n):
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


@when("{name:Person} reconnects through the same network and resumes {her:Possessive} conversations")
async def step_reconnect_proxy(context, name, her):
    world = context.world
    proxy = world.notes["proxies"][name]
    target = urlsplit(world.target.ws_url)
    await reconnect_and_resume(world, name, url=proxy.url(scheme=target.scheme, path=target.path))


@when("{name:Person} reconnects and resumes {her:Possessive} conversation from the very beginning")
async def step_resume_from_zero(context, name, her):
    world = context.world
    run = world.last_run(name)
    client = await reconnect_and_resume(world, name, {run.thread_id: 0})
    world.notes.setdefault("new_connection", {})[name] = client


def _new_connection(context, name) -> RecordingClient:
    client = context.world.notes.get("new_connection", {}).get(name)
    assert client is not None, f"{name} did not reconnect"
    return client


@then("{name:Person}'s new connection receives agent_started exactly once")
async def step_new_started_once(context, name):
    world = context.world
    client = _new_connection(context, name)
    run = world.last_run(name)
    await client.wait_run_end(run.run_id, RUN_TIMEOUT_S)
    await _quiet(world, client)
    assert_that(client.events(run_id=run.run_id, types=("agent_started",)), has_length(1), client.describe())


@then("{name:Person}'s new connection receives the whole run exactly once, in order")
async def step_new_whole_run(context, name):
    world = context.world
    client = _new_connection(context, name)
    run = world.last_run(name)
    end = await client.wait_run_end(run.run_id, RUN_TIMEOUT_S)
    await _quiet(world, client)
    events = client.events(run_id=run.run_id)
    assert_that(events, follows_lifecycle())
    assert_that(events, gapless_seqs(start=1))
    assert_that(len(events), equal_to(end.data["data"]["event_count"]), client.describe())


@then("{name:Person} receives every event of {her:Possessive} run exactly once across {her:Possessive} "
      "connections")
async def step_whole_run_once(context, name, her):
    world = context.world
    assert len(world.person(name).clients) >= 2, f"{name} never reconnected"
    _run, events = await _whole_run_once(world, name)
    for client in world.person(name).clients[:1]:
        assert not client.connected, f"the first connection was never broken\n{client.describe()}"


@then("{name:Person} receives each of the {n:d} thoughts of {her:Possessive} run exactly once")
async def step_every_thought_once(context, name, n, her):
    world = context.world
    run = world.last_run(name)
    await world.person(name).clients[-1].wait_run_end(run.run_id, RUN_TIMEOUT_S)
    thoughts = [f for f in world.events_of(name, run_id=run.run_id) if f.type == "agent_thinking"]
    step_numbers = [f.data["data"]["step"] for f in thoughts]
    assert step_numbers == list(range(1, n + 1)), f"thought steps {step_numbers}, not 1..{n}\n{describe(thoughts)}"
    texts = [f.data["data"]["reasoning"] for f in thoughts]
    assert len(set(texts)) == len(texts), f"a thought arrived twice\n{describe(thoughts)}"


# -- PostgreSQL frozen -------------------------------------------------------------------------------

@given("the database is paused")
async def step_pause_postgres(context):
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


@when("the database resumes once {name:Person}'s run has ended")
async def step_resume_postgres(context, name):
    """The run is served while the database is paused: it must end before the database resumes."""
    thaw = context.world.notes.get("postgres_thaw")
    assert thaw is not None, "the database was not paused"
    run = context.world.last_run(name)
    try:
        await run.client.wait_run_end(run.run_id, RUN_TIMEOUT_S)
    finally:
        await thaw()


@then("the archive holds every event of {name:Person}'s run, exactly as {she:Pronoun} received it")
async def step_archive(context, name, she):
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
