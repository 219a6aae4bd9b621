"""Steps about the network between a person and the service (T104, T106, T107, T108, T110).

A person's "link" is a ``TcpProxy`` in front of the load balancer (the port of
``world.target.ws_url``): it can add latency, records every byte that crosses it, and can be
cut like a failing network. Links live in ``world.notes["links"]`` and close with the world.
"""

from __future__ import annotations

from behave import given, then, when
from hamcrest import assert_that, equal_to, greater_than, less_than

from agentevents.testing.client import Frame, RecordingClient, describe
from agentevents.testing.figures import record_figure
from agentevents.testing.matchers import event_types_exactly, follows_lifecycle, gapless_seqs, only_events_of
from agentevents.testing.measures import human
from agentevents.testing.parse_types import register_all
from agentevents.testing.scripts import complete, register, steps
from agentevents.testing.steps_support import SLOW_RUN_TIMEOUT_S, last_seqs

register_all()

MATH_EVENTS = ("agent_started", "agent_thinking", "agent_thinking", "tool_executing", "tool_completed",
               "agent_completed")
DOCUMENT_LINE = "All work and no play makes Jack a dull boy. "


def repetitive_document(size: int) -> str:
    return (DOCUMENT_LINE * (size // len(DOCUMENT_LINE) + 1))[:size]


register("thinks {count:d} times, pausing {pause:g} s between thoughts",
         lambda count, pause: steps(*[s for i in range(count) for s in
                                      ({"think": f"thought {i + 1} of {count}"}, {"sleep": pause})][:-1],
                                    complete(result=count, summary=f"Thought {count} times.")))
register("calls a tool {calls:d} times in a row",
         lambda calls: steps({"repeat": calls, "step": {"tool": "echo", "params": {"value": "r" * 200}}},
                             complete(result=calls, summary=f"Called a tool {calls} times.")))
register("hands a tool a repetitive {kb:d} KB document",
         lambda kb: steps({"tool": "echo", "params": {"value": repetitive_document(kb * 1000)}},
                          complete(result="echoed", summary="Echoed a document.")))


# -- links ------------------------------------------------------------------------------------

@given("{name:Person} is connected through a network link that can fail")
@given("{name:Person} is connected through a recorded link")
async def step_link(context, name):
    world = context.world
    proxy = await world.open_link(name)
    await world.connect(name, url=proxy.url())


@given("{name:Person} is connected through a link with {latency:Duration} of added latency")
async def step_latency_link(context, name, latency):
    world = context.world
    proxy = await world.open_link(name, latency_s=latency)
    client = await world.connect(name, url=proxy.url())
    # Both directions are delayed: a ping's round trip takes at least twice the latency.
    answer = await client.request({"type": "ping"}, timeout_s=10)
    rtt = answer.at - client.sent_at[answer.data["request_id"]]
    record_figure(context, f"{name}'s ping round trip {human(rtt)} through {human(latency)} of added latency "
                           "each way")
    assert_that(rtt, greater_than(2 * latency * 0.9))


# -- failures and recovery --------------------------------------------------------------------

def thoughts(client: RecordingClient, run_id: str) -> list[Frame]:
    return client.events(run_id=run_id, types=("agent_thinking",))


@when("{name:Person}'s network link fails after {her:Possessive} agent has thought {count:d} times")
async def step_link_fails(context, name, her, count):
    world = context.world
    run = world.last_run(name)
    client = run.client
    await client.wait_for(lambda f: len(thoughts(client, run.run_id)) >= count, 10,
                          f"{count} thoughts of {name}'s agent")
    world.link_of(name).cut()
    await client.wait_closed(5)
    world.notes["cut_at_seq"] = client.last_seq(run.thread_id)


@when("{name:Person}'s agent carries on while {she:Pronoun} is offline")
async def step_carries_on(context, name, she):
    """Wait (on a separate observer connection, never counted as the person's) until the run
    published at least two events the cut connection did not receive."""
    world = context.world
    run = world.last_run(name)
    seen = world.notes["cut_at_seq"]
    observer = RecordingClient(world.target.ws_url, world.token_for(world.person(name)), name=f"{name}-observer")
    await observer.connect()
    try:
        await observer.request({"type": "subscribe", "thread_id": run.thread_id, "since_seq": seen})
        await observer.wait_for(lambda f: f.is_event and (f.data["seq"] >= seen + 2 or f.type == "agent_completed"),
                                10, "two events published while offline")
    finally:
        await observer.close()


@when("{name:Person} reconnects and asks twice to catch up from the same point")
async def step_resume_twice(context, name):
    world = context.world
    last = last_seqs(world, name)
    client = await world.connect(name)
    since = len(client.frames)
    first = await client.send({"type": "resume", "threads": last})
    second = await client.send({"type": "resume", "threads": last})
    for rid in (first, second):
        answer = await client.wait_for(lambda f, rid=rid: f.data.get("request_id") == rid
                                       and f.type in ("resumed", "error"), 10, f"answer to resume {rid}", since)
        assert answer.type == "resumed", f"resume refused: {answer.raw}"


@then("{name:Person} receives every event of {her:Possessive} run exactly once and in order")
async def step_exactly_once(context, name, her):
    """Over all of the person's connections: the whole run, each seq once, in order, and what
    arrived agrees with what the agent published (the completion's own event counts)."""
    world = context.world
    run = world.last_run(name)
    latest = world.person(name).client
    end = await latest.wait_run_end(run.run_id, SLOW_RUN_TIMEOUT_S)
    await world.quiet([latest])  # the defined end, then a grace for a late duplicate
    events = world.events_of(name, run_id=run.run_id)
    assert_that(events, follows_lifecycle())
    assert_that(events, gapless_seqs(start=1))
    ids = [f.data["event_id"] for f in events]
    assert len(ids) == len(set(ids)), f"an event arrived twice\n{describe(events)}"
    published = dict(end.data["data"].get("metrics", {}).get("event_counts", {}))
    published["agent_completed"] = 1
    received: dict[str, int] = {}
    for f in events:
        received[f.type] = received.get(f.type, 0) + 1
    assert received == published, f"received {received}, the agent published {published}\n{describe(events)}"
    texts = [f.data["data"]["reasoning"] for f in events if f.type == "agent_thinking"]
    scripted = [t for t in texts if t.startswith("thought ")]
    if scripted:  # "thought i of n", from the scripted behaviour: all of them, in order
        n = int(scripted[0].split()[-1])
        assert_that(scripted, equal_to([f"thought {i} of {n}" for i in range(1, n + 1)]))
    clients = [c for c in world.person(name).clients if c.events(run_id=run.run_id)]
    record_figure(context, f"{len(events)} events of {name}'s run received once each, over {len(clients)} "
                           "connection(s)")


@then("{name:Person}'s new connection received the events {she:Pronoun} missed")
async def step_missed_on_new(context, name, she):
    world = context.world
    run = world.last_run(name)
    latest = world.person(name).client
    cut = world.notes["cut_at_seq"]
    await latest.wait_run_end(run.run_id, SLOW_RUN_TIMEOUT_S)
    got = [f.data["seq"] for f in latest.events(run_id=run.run_id)]
    assert got and got[0] == cut + 1, f"the new connection started at seq {got[:1]}, not after {cut}\n" \
                                      f"{latest.describe()}"
    report = [f for f in latest.frames if f.type == "replay_complete"]
    assert report and report[0].data["count"] >= 2 and report[0].data["complete"], \
        f"no complete replay of the missed events\n{latest.describe()}"


# -- answers overtake a backlog (T107) --------------------------------------------------------

@when("{name:Person} catches up on the whole conversation on a new connection, "
      "at once pinging and sending a malformed request")
async def step_replay_and_ping(context, name):
    world = context.world
    run, _end, _events = await world.finished(name, timeout_s=SLOW_RUN_TIMEOUT_S)
    client = await world.connect(name)
    notes = world.notes.setdefault("overtake", {})
    notes["resume"] = await client.send({"type": "resume", "threads": {run.thread_id: 0}})
    notes["ping"] = await client.send({"type": "ping"})
    notes["bad"] = await client.send({"type": "cancel_agent"})  # no run_id: malformed
    notes["client"] = client
    notes["person"] = name


@then("the answer to the ping and the error arrive before the catch-up ends")
async def step_overtake(context):
    notes = context.world.notes["overtake"]
    client: RecordingClient = notes["client"]
    done = await client.wait_for(lambda f: f.type == "replay_complete", 20, "the end of the replay")
    pong = await client.wait_for(lambda f: f.data.get("request_id") == notes["ping"] and f.type == "pong", 5, "pong")
    error = await client.wait_for(lambda f: f.data.get("request_id") == notes["bad"] and f.type == "error", 5,
                                  "the error for the bad request")
    replayed = [f for f in client.frames if f.is_event]
    behind = sum(1 for f in replayed if f.index > max(pong.index, error.index))
    record_figure(context, f"the pong and the error overtook {behind} of the {len(replayed)} replayed events "
                           f"(pong at frame {pong.index}, error at frame {error.index}, replay ended at frame "
                           f"{done.index})")
    assert_that(error.data["code"], equal_to("malformed_message"))
    assert pong.index < done.index and error.index < done.index, \
        f"the pong (#{pong.index}) and error (#{error.index}) waited for the replay (#{done.index})\n" \
        f"{client.describe()}"
    assert_that(behind, greater_than(0))


@then("the catch-up still delivers every event of the conversation once, in order")
async def step_replay_whole(context):
    world = context.world
    notes = world.notes["overtake"]
    client: RecordingClient = notes["client"]
    run = world.last_run(notes["person"])
    done = await client.wait_for(lambda f: f.type == "replay_complete", 20, "the end of the replay")
    await world.quiet([client])
    original = run.client.events(thread_id=run.thread_id)
    replayed = client.events(thread_id=run.thread_id)
    assert_that(replayed, gapless_seqs(start=1))
    assert_that([f.data["event_id"] for f in replayed], equal_to([f.data["event_id"] for f in original]))
    assert_that(done.data["count"], equal_to(len(original)))
    assert done.data["complete"], f"replay incomplete: {done.raw}"


# -- compression (T108) -----------------------------------------------------------------------

def wire_messages(data: bytes) -> list[tuple[int, bool, int]]:
    """Server-to-client WebSocket data messages on the wire after the HTTP handshake:
    (bytes on the wire including frame headers, compressed flag, opcode)."""
    end = data.find(b"\r\n\r\n")
    assert end > 0, "no HTTP handshake in the recording"
    i, out = end + 4, []
    message_size, compressed, opcode = 0, False, 0
    while i + 2 <= len(data):
        b0, b1 = data[i], data[i + 1]
        length, head = b1 & 0x7F, 2
        if length == 126:
            length, head = int.from_bytes(data[i + 2:i + 4], "big"), 4
        elif length == 127:
            length, head = int.from_bytes(data[i + 2:i + 10], "big"), 10
        if b1 & 0x80:
            head += 4
        if i + head + length > len(data):
            break
        op = b0 & 0x0F
        if op in (0x1, 0x2):
            message_size, compressed, opcode = 0, bool(b0 & 0x40), op
        if op in (0x0, 0x1, 0x2):
            message_size += head + length
            if b0 & 0x80:
                out.append((message_size, compressed, opcode))
        i += head + length
    return out


@then("compression was agreed for {name:Person}'s connection")
async def step_compression_agreed(context, name):
    client = context.world.person(name).client
    assert client.ws is not None
    agreed = client.ws.response.headers.get("Sec-WebSocket-Extensions", "")
    record_figure(context, f"compression agreed for {name}'s connection: {agreed}")
    assert "permessage-deflate" in agreed, f"the server did not agree to permessage-deflate: {agreed!r}"


@then("the {kb:d} KB document crossed {name:Person}'s link in less than half its size")
async def step_document_compressed(context, kb, name):
    world = context.world
    run = world.last_run(name)
    client = run.client
    await client.wait_run_end(run.run_id, SLOW_RUN_TIMEOUT_S)
    messages = wire_messages(bytes(world.link_of(name).wire.to_client))
    assert len(messages) >= len(client.frames), \
        f"{len(messages)} messages on the wire for {len(client.frames)} frames received"
    carrying = [f for f in client.events(run_id=run.run_id)
                if f.type == "tool_executing" and len(f.raw.encode()) >= kb * 1000]
    assert carrying, f"no frame carried the {kb} KB document\n{client.describe()}"
    frame = carrying[0]
    on_wire, compressed, _op = messages[frame.index]
    size = len(frame.raw.encode())
    run_text = sum(len(f.raw.encode()) for f in client.frames)
    run_wire = sum(m[0] for m in messages[:len(client.frames)])
    record_figure(context, f"the {size:,}-byte document message crossed the link in {on_wire:,} bytes "
                           f"({on_wire / size:.1%}); the whole run {run_wire:,} bytes for {run_text:,} bytes of text "
                           "— limit 50 %")
    assert compressed, f"frame #{frame.index} was sent uncompressed"
    assert_that(on_wire, less_than(size / 2))
    assert_that(run_wire, less_than(run_text / 2))


# -- latency (T110) ---------------------------------------------------------------------------

@then("{name:Person} receives {her:Possessive} whole run, complete and in order")
async def step_whole_run_slow_link(context, name, her):
    world = context.world
    run, _end, _events = await world.finished(name, timeout_s=SLOW_RUN_TIMEOUT_S)
    await world.quiet([run.client])
    events = run.client.events(run_id=run.run_id)
    assert_that(events, event_types_exactly(*MATH_EVENTS))
    assert_that(run.client.events(), gapless_seqs(start=1))
    assert_that(run.client.events(), only_events_of(world.person(name).user_id, {run.thread_id}))
    record_figure(context, f"{name}'s whole run arrived in {human(events[-1].at - run.sent_at)} through "
                           f"{human(world.link_of(name).latency_s)} of added latency")
