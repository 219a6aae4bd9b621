"""Steps about security: encryption on the wire, permissions, the audit log, personal data,
hijack attempts and token handling, abuse limits (T105, T109, T116-T120).

TLS goes through the target's ``wss://`` URL with its certificate authority (the profile's, or
the native stack's test CA; ``-D wss_url=... -D tls_ca=...``). A ``TcpProxy`` in front records
the ciphertext. The audit log, the archive and revocations are read and written through the
target's control (``agentevents.testing.control``).
"""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

from behave import given, then, when
from hamcrest import assert_that, empty, equal_to, greater_than, greater_than_or_equal_to

from agentevents.testing.client import HandshakeRefused, RecordingClient, describe
from agentevents.testing.figures import record_figure
from agentevents.testing.matchers import follows_lifecycle, gapless_seqs
from agentevents.testing.measures import human
from agentevents.testing.parse_types import register_all
from agentevents.testing.polling import poll
from agentevents.testing.scripts import complete, register, steps
from agentevents.testing.steps_support import (
    SLOW_RUN_TIMEOUT_S,
    answer_approval,
    approval_id,
    approval_request,
    runs_ended,
)
from agentevents.testing.tokens import TokenFactory

register_all()

ARCHIVE_DEADLINE_S = 30

for _pronoun in ("her", "his", "their"):
    register(f"waits for {_pronoun} approval",
             lambda: steps({"think": "I need your approval before going on."},
                           {"approval": "May I send the report?", "timeout_s": 30},
                           complete(result="sent", summary="Sent the report.")))


# -- helpers ----------------------------------------------------------------------------------

def tls_settings(context) -> tuple[str, str]:
    """The target's wss URL and CA (its profile, or the native stack's); @tls scenarios run only where both exist."""
    target = context.world.target
    if not (target.wss_url and target.tls_ca):
        raise AssertionError(f"target {target.profile.name} has no wss URL and TLS CA (declare them for @tls)")
    return target.wss_url, target.tls_ca


async def wait_rows(fetch, ready, what: str) -> list[dict]:
    """Poll the archive or the audit until ``ready(rows)`` (writes are batched), with a deadline."""
    rows = await poll(fetch, ready, ARCHIVE_DEADLINE_S)
    if not ready(rows):
        raise AssertionError(f"{what} within {ARCHIVE_DEADLINE_S}s; found {len(rows)} rows: {rows[:5]}")
    return rows


def all_frames(world) -> list:
    return [f for p in world.people.values() for c in p.clients for f in c.frames]


# -- T116: TLS --------------------------------------------------------------------------------

@given("{name:Person} is connected over TLS through a recorded link")
async def step_tls_link(context, name):
    world = context.world
    wss_url, ca = tls_settings(context)
    parts = urlsplit(wss_url)
    host = "127.0.0.1" if parts.hostname == "localhost" else parts.hostname
    proxy = await world.open_link(name, target=(host, parts.port or 443))
    ctx = ssl.create_default_context(cafile=ca)
    url = f"wss://{parts.hostname}:{proxy.port}{parts.path or '/ws'}"
    client = await world.connect(name, url=url, ssl_context=ctx, compression=None)
    ssl_object = client.ws.transport.get_extra_info("ssl_object")
    assert ssl_object is not None, "the connection is not encrypted"
    record_figure(context, f"{name} connected with {ssl_object.version()} {ssl_object.cipher()[0]}")


@given("{name:Person} is connected without TLS through a recorded link, uncompressed")
async def step_plain_link(context, name):
    world = context.world
    parts = urlsplit(world.target.ws_url)
    proxy = await world.open_link(name, target=(parts.hostname or "127.0.0.1", parts.port or 80))
    await world.connect(name, url=proxy.url(), compression=None)


def question_and_token(world, name: str) -> tuple[bytes, bytes]:
    run = world.last_run(name)
    started = next((f for f in run.client.events(run_id=run.run_id) if f.type == "agent_started"), None)
    assert started is not None, f"{name}'s run never started\n{run.client.describe()}"
    question = started.data["data"]["message_preview"].encode()
    return question, run.client.token.encode()


@then("the recording of {name:Person}'s encrypted link shows neither {her:Possessive} question "
      "nor {her:Possessive} token")
async def step_no_plaintext(context, name, her):
    world = context.world
    run, _end, _events = await world.finished(name, timeout_s=SLOW_RUN_TIMEOUT_S)
    question, token = question_and_token(world, name)
    wire = world.link_of(name).wire
    seen = bytes(wire.to_server) + bytes(wire.to_client)
    record_figure(context, f"{len(seen):,} bytes recorded on {name}'s encrypted link, none of them readable")
    assert_that(len(wire.to_client), greater_than(2000))
    assert wire.to_server[:1] == b"\x16", f"the link does not start with a TLS handshake: {bytes(wire.to_server[:8])!r}"
    assert question not in seen, f"{name}'s question crossed the encrypted link in plain text"
    assert token not in seen, f"{name}'s token crossed the encrypted link in plain text"
    for word in question.split():
        if len(word) >= 8:
            assert word not in seen, f"the word {word!r} of {name}'s question is readable on the encrypted link"


@then("the recording of {name:Person}'s plain link shows {her:Possessive} question and {her:Possessive} token")
async def step_plaintext_control(context, name, her):
    world = context.world
    run, _end, _events = await world.finished(name, timeout_s=SLOW_RUN_TIMEOUT_S)
    question, token = question_and_token(world, name)
    wire = world.link_of(name).wire
    record_figure(context, f"{wire.total:,} bytes recorded on {name}'s plain link")
    assert question in bytes(wire.to_client), f"{name}'s question is not readable on the plain link " \
                                              "(the control capture shows nothing)"
    assert token in bytes(wire.to_server), f"{name}'s token is not readable on the plain link"


# -- T117: permissions shape events -----------------------------------------------------------

def sql_events(client: RecordingClient, run_id: str) -> list:
    return [f for f in client.events(run_id=run_id) if f.data["data"].get("tool_name") == "sql_query"]


@then("{name:Person} sees the SQL query and the rows it returned")
async def step_sees_sql(context, name):
    run, end, _events = await context.world.finished(name, timeout_s=SLOW_RUN_TIMEOUT_S)
    calls = sql_events(run.client, run.run_id)
    assert [f.type for f in calls] == ["tool_executing", "tool_completed"], \
        f"{name} did not see one SQL call\n{run.client.describe()}"
    query = calls[0].data["data"]["parameters"]["query"]
    assert query.lower().startswith("select"), f"the SQL call shows no query: {calls[0].raw}"
    done = calls[1].data["data"]
    assert_that(done["status"], equal_to("success"))
    assert done["result"]["columns"] and done["result"]["rows"], f"no rows in {calls[1].raw}"
    assert_that(end.data["data"]["status"], equal_to("completed"))


@then("{name:Person} sees no SQL call and no database rows")
async def step_no_sql(context, name):
    world = context.world
    run, end, _events = await world.finished(name, timeout_s=SLOW_RUN_TIMEOUT_S)
    for other in world.runs:  # the defined end: every run over, an in-order barrier, a short grace
        await other.client.wait_run_end(other.run_id, SLOW_RUN_TIMEOUT_S)
    await world.quiet([run.client])
    assert_that(sql_events(run.client, run.run_id), empty())
    for frame in world.frames_of(name):
        lowered = frame.raw.lower()
        for sign in ("sql_query", "select ", "postgresql://demo"):
            assert sign not in lowered, f"frame #{frame.index} shows {sign!r}: {frame.raw[:300]}"
    result = end.data["data"].get("result") or {}
    assert "query" not in result, f"the completion carries database rows: {end.raw[:300]}"
    assert_that(end.data["data"]["status"], equal_to("completed"))


# -- T118: the audit log ----------------------------------------------------------------------

@then("every event {name:Person} received is in the audit log with {her:Possessive} user id and connection id")
async def step_audit(context, name, her):
    world = context.world
    person = world.person(name)
    await runs_ended(world.runs_of(name), SLOW_RUN_TIMEOUT_S)
    control = world.target.control
    for client in person.clients:
        connection_id = client.frames[0].data["connection_id"]
        events = client.events()
        assert events, f"{client.name} received no events\n{client.describe()}"
        ids = [f.data["event_id"] for f in events]
        rows = await wait_rows(lambda ids=ids: control.audit_rows(ids),
                               lambda rows, ids=ids: {r["event_id"] for r in rows} >= set(ids),
                               f"the audit log did not record all {len(ids)} events {name} received")
        mine = [r for r in rows if r["connection_id"] == connection_id]
        assert_that(sorted(r["event_id"] for r in mine), equal_to(sorted(ids)))
        for row in rows:
            assert row["user_id"] == person.user_id, f"event {row['event_id']} is logged as delivered to " \
                                                     f"{row['user_id']}, not {person.user_id}"
        by_id = {f.data["event_id"]: f for f in events}
        for row in mine:
            frame = by_id[row["event_id"]]
            assert (row["thread_id"], row["seq"]) == (frame.data["thread_id"], frame.data["seq"]), \
                f"audit row {row} does not match the frame {frame.raw[:200]}"
        record_figure(context, f"{len(mine)} audit rows for the {len(ids)} events {name} received on {connection_id}")


# -- T119: personal data ----------------------------------------------------------------------

PII = {"email": "alice.smith@example.com", "card": "4111 1111 1111 1111",
       "token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZS1zbWl0aCJ9.c2lnbmF0dXJlLXNlY3JldC12YWx1ZQ"}


@when("{name:Person} asks the research agent about a refund, giving {her:Possessive} email, card number "
      "and an access token")
async def step_pii_question(context, name, her):
    message = (f"Research the refund rules for my order. Contact me at {PII['email']}, my card is {PII['card']} "
               f"and my access token is {PII['token']}.")
    await context.world.start(name, "research", message)


def pii_needles() -> list[str]:
    return [PII["email"], PII["card"], PII["card"].replace(" ", ""), PII["token"], PII["token"].split(".")[1]]


@then("no frame that any connection received contains {her:Possessive} personal data")
async def step_no_pii_frames(context, her):
    world = context.world
    await runs_ended(world.runs, SLOW_RUN_TIMEOUT_S)
    await world.quiet()
    frames = all_frames(world)
    for frame in frames:
        for needle in pii_needles():
            assert needle not in frame.raw, f"frame #{frame.index} contains {needle!r}: {frame.raw[:300]}"
    record_figure(context, f"{len(frames)} frames of every connection checked for the personal data")


@then("{name:Person} sees {her:Possessive} email, card number and token marked as redacted")
async def step_redaction_markers(context, name, her):
    world = context.world
    run = world.last_run(name)
    events = run.client.events(run_id=run.run_id)
    text = "".join(f.raw for f in events)
    for kind in ("email", "card", "token"):
        assert f"[REDACTED:{kind}]" in text, f"no [REDACTED:{kind}] marker in {name}'s run\n{describe(events)}"


@then("the archive of {name:Person}'s run holds every event and none of {her:Possessive} personal data")
async def step_no_pii_archive(context, name, her):
    world = context.world
    run, _end, _events = await world.finished(name, timeout_s=SLOW_RUN_TIMEOUT_S)
    received = {f.data["event_id"] for f in run.client.events(run_id=run.run_id)}
    rows = await wait_rows(lambda: world.target.control.archived_events(run.thread_id, run_id=run.run_id),
                           lambda rows: {r["event_id"] for r in rows} >= received,
                           f"the archive did not hold all {len(received)} events of {name}'s run")
    for row in rows:
        for needle in pii_needles():
            assert needle not in row["payload"], f"archived event {row['event_id']} contains {needle!r}"
    record_figure(context, f"{len(rows)} archived events of {name}'s run checked for the personal data")


# -- T120: hijack attempts and token handling -------------------------------------------------

@when("{attacker:Person} tries to follow, replay, cancel and answer {victim:Person}'s run")
async def step_hijack(context, attacker, victim):
    world = context.world
    run = world.last_run(victim)
    asked = await approval_request(run, f"{victim}'s approval request")
    client = world.person(attacker).client
    attempts = {
        "subscribe": {"type": "subscribe", "thread_id": run.thread_id, "since_seq": 0},
        "resume": {"type": "resume", "threads": {run.thread_id: 0}},
        "cancel": {"type": "cancel_agent", "run_id": run.run_id},
        "respond": {"type": "respond", "run_id": run.run_id, "approval_id": approval_id(asked),
                    "approved": False},
    }
    world.notes["hijack"] = {what: await client.request(message) for what, message in attempts.items()}


@when("{name:Person} approves {her:Possessive} agent's request")
async def step_approve(context, name, her):
    await answer_approval(context.world.last_run(name), True, f"{name}'s own answer was refused",
                          "the approval request")


@then("every one of {attacker:Person}'s attempts is refused as forbidden")
async def step_hijack_refused(context, attacker):
    answers = context.world.notes["hijack"]
    for what, answer in answers.items():
        if what == "resume":
            # resume answers per thread: a thread that is not yours is listed as forbidden, with no replay
            assert answer.type == "error" and answer.data["code"] == "forbidden" or \
                (answer.type == "resumed" and answer.data.get("forbidden") and not answer.data.get("threads")), \
                f"{attacker}'s resume of another user's thread was not refused: {answer.raw}"
        else:
            assert answer.type == "error" and answer.data.get("code") == "forbidden", \
                f"{attacker}'s {what} was not refused as forbidden: {answer.raw}"


@then("{attacker:Person} learns nothing about {victim:Person}'s run")
async def step_learns_nothing(context, attacker, victim):
    world = context.world
    run, _end, _events = await world.finished(victim, timeout_s=SLOW_RUN_TIMEOUT_S)
    client = world.person(attacker).client
    await world.quiet([client])
    victim_id = world.person(victim).user_id
    assert_that([f for f in client.frames if f.is_event], empty())
    kinds = {f.type for f in client.frames}
    assert kinds <= {"connection_established", "error", "resumed", "pong"}, \
        f"{attacker} received {sorted(kinds)}\n{client.describe()}"
    for frame in client.frames:
        assert victim_id not in frame.raw, f"frame #{frame.index} names {victim}: {frame.raw[:300]}"
        assert "head_seq" not in frame.raw and "previous_status" not in frame.raw, \
            f"frame #{frame.index} reveals the state of {victim}'s run: {frame.raw[:300]}"


@then("{name:Person}'s run records {her:Possessive} own approval")
async def step_own_approval(context, name, her):
    run, end, _events = await context.world.finished(name, timeout_s=SLOW_RUN_TIMEOUT_S)
    approvals = end.data["data"].get("approvals") or []
    assert [a.get("approved") for a in approvals] == [True], f"the run records approvals {approvals}: {end.raw}"
    assert_that(run.client.events(run_id=run.run_id), follows_lifecycle())


@when("someone connects as {name:Person} with a token signed with another key")
async def step_foreign_key(context, name):
    world = context.world
    forged = TokenFactory("not-the-stack-key-" + "x" * 32).token(world.person(name).user_id)
    world.notes.setdefault("handshakes", {})["signed with another key"] = await attempt(world, forged)


@when("someone connects as {name:Person} with one of {her:Possessive} tokens after it was revoked")
async def step_revoked(context, name, her):
    """A second token of hers, which opens the door until it is revoked; then it is tried again."""
    world = context.world
    token = world.token_for(world.person(name))
    before = await attempt(world, token)
    assert before == "accepted", f"{name}'s second token was refused before it was revoked: {before!r}"
    await world.target.control.revoke_token(token, ttl_s=3600)
    world.notes.setdefault("handshakes", {})["revoked"] = await attempt(world, token)


async def attempt(world, token: str) -> int | str:
    client = RecordingClient(world.target.ws_url, token, name="intruder")
    try:
        await client.connect()
    except HandshakeRefused as refused:
        return refused.status
    await client.close()
    return "accepted"


@then("the handshake is refused with HTTP {status:d}")
async def step_handshake_refused(context, status):
    outcomes = context.world.notes.get("handshakes", {})
    assert len(outcomes) == 1, f"expected one handshake, got {outcomes}"
    for what, outcome in outcomes.items():
        assert outcome == status, f"the token {what} got {outcome!r}, not HTTP {status}"


# -- T105: refreshing a token mid-run ---------------------------------------------------------

@then("{name:Person}'s connection stays open past {her:Possessive} first token's expiry "
      "while {her:Possessive} run arrives whole")
async def step_refresh_kept(context, name, her):
    world = context.world
    run = world.last_run(name)
    client = run.client
    expires = client.frames[0].data["token_expires_at"]
    end = await client.wait_run_end(run.run_id, SLOW_RUN_TIMEOUT_S)
    record_figure(context, f"{name}'s run ended {human(end.wall - expires)} after {her} first token expired, "
                           "on the same connection")
    grace = world.target.limits.token_grace_s
    assert end.wall > expires + grace, \
        f"the run ended before the first token ran out ({end.wall:.1f} <= {expires} + {grace}): " \
        "the scenario proves nothing"
    answer = await client.request({"type": "ping"})
    assert_that(answer.type, equal_to("pong"))
    assert client.connected, f"{name}'s connection closed: {client.close_code} {client.close_reason}"
    expired = [f for f in client.frames if f.type == "error" and f.data.get("code") == "token_expired"]
    assert_that(expired, empty())
    events = client.events(run_id=run.run_id)
    assert_that(events, follows_lifecycle())
    assert_that(events, gapless_seqs(start=1))
    assert_that(end.data["data"]["status"], equal_to("completed"))


# -- T109: flooding and budgets ---------------------------------------------------------------

@when("{name:Person} floods the service with {count:d} messages at once")
async def step_flood(context, name, count):
    client = context.world.person(name).client
    since = len(client.frames)
    ids = [await client.send({"type": "ping", "request_id": f"{name}-flood-{i}"}) for i in range(count)]
    # A refused message is answered by a rate_limited error (which cannot name the request: the
    # gateway refuses it before reading it); every other one by its pong.
    await client.wait_for(lambda f: len(flood_answers(client, since, ids)) == count, 15,
                          f"answers to all {count} messages", since)
    context.world.notes["flood"] = (ids, since)


def flood_answers(client: RecordingClient, since: int, ids: list[str]) -> list:
    wanted = set(ids)
    return [f for f in client.frames[since:] if (f.type == "pong" and f.data.get("request_id") in wanted)
            or (f.type == "error" and f.data.get("code") == "rate_limited")]


@then("{name:Person} is told to slow down and stays connected")
async def step_slowed(context, name):
    client = context.world.person(name).client
    ids, since = context.world.notes["flood"]
    answers = flood_answers(client, since, ids)
    pongs = [f for f in answers if f.type == "pong"]
    limited = [f for f in answers if f.type == "error"]
    record_figure(context, f"{len(ids)} messages at once: {len(pongs)} answered, {len(limited)} told to slow down")
    assert_that(len(limited), greater_than(0))
    assert_that(len(pongs), greater_than(0))
    assert_that(len(pongs) + len(limited), equal_to(len(ids)))
    others = [f for f in client.frames[since:] if f not in answers]
    assert_that(others, empty())
    for frame in limited:
        assert frame.data.get("details", {}).get("retry_after_ms", 0) > 0, f"no retry_after_ms in {frame.raw}"
    # Honour the advised wait, then the connection serves again.
    async def ping():
        mark = len(client.frames)
        rid = await client.send({"type": "ping"})
        return await client.wait_for(lambda f: (f.type == "pong" and f.data.get("request_id") == rid)
                                     or (f.type == "error" and f.data.get("code") == "rate_limited"),
                                     5, "an answer to a ping after the flood", mark)

    answer = await poll(ping, lambda a: a.type == "pong", 5,
                        lambda a: a.data.get("details", {}).get("retry_after_ms", 100) / 1000)
    assert answer.type == "pong", f"{name} is not served again\n{client.describe()}"
    assert client.connected, f"{name} was disconnected: {client.close_code} {client.close_reason}"


@then("{name:Person}'s agent is stopped at the free tier's budget of {budget:d} events "
      "and {her:Possessive} run ends degraded")
async def step_budget(context, name, budget, her):
    run, end, _events = await context.world.finished(name, timeout_s=SLOW_RUN_TIMEOUT_S)
    events = run.client.events(run_id=run.run_id)
    record_figure(context, f"{len(events):,} events delivered before {name}'s agent was stopped — budget {budget:,}")
    assert_that(end.data["data"]["status"], equal_to("degraded"))
    assert_that(end.data["data"].get("limit"), equal_to("max_events_per_run"))
    assert_that(len(events) - 1, greater_than_or_equal_to(budget))
    assert len(events) <= budget + 3, f"{len(events)} events for a budget of {budget}"
    assert_that(events, gapless_seqs(start=1))
    assert_that(end.data["data"]["event_count"], equal_to(len(events)))
