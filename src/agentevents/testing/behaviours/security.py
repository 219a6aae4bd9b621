"""The security scenarios (features/steps/security.py): encryption on the wire, permissions, the
audit log, personal data, hijack attempts and token handling, abuse limits; and the scripted agent
that "waits for her approval".

TLS goes through the target's ``wss://`` URL with its certificate authority (the profile's, or
the native stack's test CA; ``-D wss_url=... -D tls_ca=...``). A ``TcpProxy`` in front records
the ciphertext. The audit log, the archive and revocations are read and written through the
target's control (``testing.control``).
"""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

from hamcrest import assert_that, empty, equal_to, greater_than, greater_than_or_equal_to

from ..attacks import SQL_READS_OF_OTHERS
from ..client import Frame, RecordingClient, describe
from ..figures import record_figure
from ..matchers import follows_lifecycle, gapless_seqs
from ..measures import human
from ..polling import poll
from ..scripts import complete, register, steps
from ..steps_support import SLOW_RUN_TIMEOUT_S, approval_id, approval_request, established, handshake, runs_ended
from ..tokens import TokenFactory
from ..toolcalls import completions_of
from ..world import World

ARCHIVE_DEADLINE_S = 30

PII = {"email": "alice.smith@example.com", "card": "4111 1111 1111 1111",
       "token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZS1zbWl0aCJ9.c2lnbmF0dXJlLXNlY3JldC12YWx1ZQ"}

for _pronoun in ("her", "his", "their"):
    register(f"waits for {_pronoun} approval",
             lambda: steps({"think": "I need your approval before going on."},
                           {"approval": "May I send the report?", "timeout_s": 30},
                           complete(result="sent", summary="Sent the report.")))


def tls_settings(world: World) -> tuple[str, str]:
    """The target's wss URL and CA (its profile, or the native stack's); @tls scenarios run only where both exist."""
    target = world.target
    if not (target.wss_url and target.tls_ca):
        raise AssertionError(f"target {target.profile.name} has no wss URL and TLS CA (declare them for @tls)")
    return target.wss_url, target.tls_ca


async def wait_rows(fetch, ready, what: str) -> list[dict]:
    """Poll the archive or the audit until ``ready(rows)`` (writes are batched), with a deadline."""
    rows = await poll(fetch, ready, ARCHIVE_DEADLINE_S)
    if not ready(rows):
        raise AssertionError(f"{what} within {ARCHIVE_DEADLINE_S}s; found {len(rows)} rows: {rows[:5]}")
    return rows


def all_frames(world: World) -> list[Frame]:
    return [f for p in world.people.values() for c in p.clients for f in c.frames]


# -- T116: TLS --------------------------------------------------------------------------------

async def connect_over_recorded_tls(context, name: str) -> None:
    world = context.world
    wss_url, ca = tls_settings(world)
    parts = urlsplit(wss_url)
    host = "127.0.0.1" if parts.hostname == "localhost" else parts.hostname
    proxy = await world.open_link(name, target=(host, parts.port or 443))
    ctx = ssl.create_default_context(cafile=ca)
    url = f"wss://{parts.hostname}:{proxy.port}{parts.path or '/ws'}"
    client = await world.connect(name, url=url, ssl_context=ctx, compression=None)
    ssl_object = client.ws.transport.get_extra_info("ssl_object")
    assert ssl_object is not None, "the connection is not encrypted"
    record_figure(context, f"{name} connected with {ssl_object.version()} {ssl_object.cipher()[0]}")


async def connect_over_recorded_plain_link(context, name: str) -> None:
    world = context.world
    parts = urlsplit(world.target.ws_url)
    proxy = await world.open_link(name, target=(parts.hostname or "127.0.0.1", parts.port or 80))
    await world.connect(name, url=proxy.url(), compression=None)


def question_and_token(world: World, name: str) -> tuple[bytes, bytes]:
    run = world.last_run(name)
    started = next((f for f in run.client.events(run_id=run.run_id) if f.type == "agent_started"), None)
    assert started is not None, f"{name}'s run never started\n{run.client.describe()}"
    question = started.data["data"]["message_preview"].encode()
    return question, run.client.token.encode()


async def encrypted_link_hides_question_and_token(context, name: str) -> None:
    world = context.world
    await world.finished(name, timeout_s=SLOW_RUN_TIMEOUT_S)
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


async def plain_link_shows_question_and_token(context, name: str) -> None:
    world = context.world
    await world.finished(name, timeout_s=SLOW_RUN_TIMEOUT_S)
    question, token = question_and_token(world, name)
    wire = world.link_of(name).wire
    record_figure(context, f"{wire.total:,} bytes recorded on {name}'s plain link")
    assert question in bytes(wire.to_client), f"{name}'s question is not readable on the plain link " \
                                              "(the control capture shows nothing)"
    assert token in bytes(wire.to_server), f"{name}'s token is not readable on the plain link"


# -- T117: permissions shape events -----------------------------------------------------------

def sql_events(client: RecordingClient, run_id: str) -> list[Frame]:
    return [f for f in client.events(run_id=run_id) if f.data["data"].get("tool_name") == "sql_query"]


async def sees_sql_and_rows(context, name: str) -> None:
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


async def sees_no_sql(context, name: str) -> None:
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


register("tries to read other users' conversations through the database tool",
         lambda: steps(*({"tool": "sql_query", "params": {"query": query}, "purpose": "read the archive"}
                         for query in SQL_READS_OF_OTHERS)))


async def database_shows_nothing_of_others(context, name: str, other: str) -> None:
    """Every attempt was made (announced with its query), each ended sql_not_allowed without a
    result, and nothing of the other person's runs reached any of this person's connections."""
    world = context.world
    run, end, events = await world.finished(name, timeout_s=SLOW_RUN_TIMEOUT_S)
    await world.quiet(world.person(name).clients)
    calls = sql_events(run.client, run.run_id)
    asked = [f.data["data"].get("parameters", {}).get("query") for f in calls if f.type == "tool_executing"]
    assert_that(asked, equal_to(SQL_READS_OF_OTHERS))
    for call in (f for f in calls if f.type == "tool_executing"):
        query = call.data["data"]["parameters"]["query"]
        done = completions_of(events, call)
        assert len(done) == 1, f"{query!r} ended {len(done)} times\n{run.client.describe()}"
        d = done[0].data["data"]
        outcome = (d.get("status"), (d.get("error") or {}).get("code"), d.get("result"))
        assert outcome == ("error", "sql_not_allowed", None), \
            f"{name}'s query {query!r} was not refused as sql_not_allowed: {done[0].raw[:500]}"
    theirs = [ident for r in world.runs_of(other) for ident in (r.thread_id, r.run_id)]
    assert theirs, f"{other} has no run whose conversation {name} could try to read"
    for frame in world.frames_of(name):
        for ident in theirs:
            assert ident not in frame.raw, f"{name}'s frame #{frame.index} holds {other}'s {ident}: {frame.raw[:300]}"
    assert_that(end.data["data"]["status"], equal_to("completed"))


# -- T118: the audit log ----------------------------------------------------------------------

async def audit_holds_every_event(context, name: str) -> None:
    world = context.world
    person = world.person(name)
    await runs_ended(world.runs_of(name), SLOW_RUN_TIMEOUT_S)
    control = world.target.control
    for client in person.clients:
        connection_id = established(client).data["connection_id"]
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

async def ask_research_with_pii(context, name: str) -> None:
    message = (f"Research the refund rules for my order. Contact me at {PII['email']}, my card is {PII['card']} "
               f"and my access token is {PII['token']}.")
    await context.world.start(name, "research", message)


def pii_needles() -> list[str]:
    return [PII["email"], PII["card"], PII["card"].replace(" ", ""), PII["token"], PII["token"].split(".")[1]]


async def no_pii_in_any_frame(context) -> None:
    world = context.world
    await runs_ended(world.runs, SLOW_RUN_TIMEOUT_S)
    await world.quiet()
    frames = all_frames(world)
    for frame in frames:
        for needle in pii_needles():
            assert needle not in frame.raw, f"frame #{frame.index} contains {needle!r}: {frame.raw[:300]}"
    record_figure(context, f"{len(frames)} frames of every connection checked for the personal data")


def pii_marked_redacted(context, name: str) -> None:
    run = context.world.last_run(name)
    events = run.client.events(run_id=run.run_id)
    text = "".join(f.raw for f in events)
    for kind in ("email", "card", "token"):
        assert f"[REDACTED:{kind}]" in text, f"no [REDACTED:{kind}] marker in {name}'s run\n{describe(events)}"


async def archive_whole_without_pii(context, name: str) -> None:
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

async def try_to_hijack(context, attacker: str, victim: str) -> None:
    """Follow, replay, cancel and answer the victim's run, once it asks for approval; the answers are kept."""
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


def hijack_refused(context, attacker: str) -> None:
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


async def learns_nothing(context, attacker: str, victim: str) -> None:
    world = context.world
    await world.finished(victim, timeout_s=SLOW_RUN_TIMEOUT_S)
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


async def records_own_approval(context, name: str) -> None:
    run, end, _events = await context.world.finished(name, timeout_s=SLOW_RUN_TIMEOUT_S)
    approvals = end.data["data"].get("approvals") or []
    assert [a.get("approved") for a in approvals] == [True], f"the run records approvals {approvals}: {end.raw}"
    assert_that(run.client.events(run_id=run.run_id), follows_lifecycle())


async def attempt(world: World, token: str) -> int | str:
    """A handshake with this token: the HTTP status it was refused with, or "accepted" (then closed)."""
    outcome = await handshake(world, token, "intruder")
    if isinstance(outcome, int):
        return outcome
    await outcome.close()
    return "accepted"


async def connect_with_foreign_key(context, name: str) -> None:
    world = context.world
    forged = TokenFactory("not-the-stack-key-" + "x" * 32).token(world.person(name).user_id)
    world.notes.setdefault("handshakes", {})["signed with another key"] = await attempt(world, forged)


async def connect_after_revocation(context, name: str) -> None:
    """A second token of hers, which opens the door until it is revoked; then it is tried again."""
    world = context.world
    token = world.token_for(world.person(name))
    before = await attempt(world, token)
    assert before == "accepted", f"{name}'s second token was refused before it was revoked: {before!r}"
    await world.target.control.revoke_token(token, ttl_s=3600)
    world.notes.setdefault("handshakes", {})["revoked"] = await attempt(world, token)


def handshake_refused(context, status: int) -> None:
    outcomes = context.world.notes.get("handshakes", {})
    assert len(outcomes) == 1, f"expected one handshake, got {outcomes}"
    for what, outcome in outcomes.items():
        assert outcome == status, f"the token {what} got {outcome!r}, not HTTP {status}"


# -- T105: refreshing a token mid-run ---------------------------------------------------------

async def stays_open_past_first_token(context, name: str, her: str) -> None:
    world = context.world
    run = world.last_run(name)
    client = run.client
    expires = established(client).data["token_expires_at"]
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

def flood_answers(client: RecordingClient, since: int, ids: list[str]) -> list[Frame]:
    wanted = set(ids)
    return [f for f in client.frames[since:] if (f.type == "pong" and f.data.get("request_id") in wanted)
            or (f.type == "error" and f.data.get("code") == "rate_limited")]


async def flood(context, name: str, count: int) -> None:
    client = context.world.person(name).client
    since = len(client.frames)
    ids = [await client.send({"type": "ping", "request_id": f"{name}-flood-{i}"}) for i in range(count)]
    # A refused message is answered by a rate_limited error (which cannot name the request: the
    # gateway refuses it before reading it); every other one by its pong.
    await client.wait_for(lambda f: len(flood_answers(client, since, ids)) == count, 15,
                          f"answers to all {count} messages", since)
    context.world.notes["flood"] = (ids, since)


async def slowed_down_and_connected(context, name: str) -> None:
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
    async def ping() -> Frame:
        mark = len(client.frames)
        rid = await client.send({"type": "ping"})
        return await client.wait_for(lambda f: (f.type == "pong" and f.data.get("request_id") == rid)
                                     or (f.type == "error" and f.data.get("code") == "rate_limited"),
                                     5, "an answer to a ping after the flood", mark)

    answer = await poll(ping, lambda a: a.type == "pong", 5,
                        lambda a: a.data.get("details", {}).get("retry_after_ms", 100) / 1000)
    assert answer.type == "pong", f"{name} is not served again\n{client.describe()}"
    assert client.connected, f"{name} was disconnected: {client.close_code} {client.close_reason}"


async def stopped_at_budget(context, name: str, budget: int) -> None:
    run, end, _events = await context.world.finished(name, timeout_s=SLOW_RUN_TIMEOUT_S)
    events = run.client.events(run_id=run.run_id)
    record_figure(context, f"{len(events):,} events delivered before {name}'s agent was stopped — budget {budget:,}")
    assert_that(end.data["data"]["status"], equal_to("degraded"))
    assert_that(end.data["data"].get("limit"), equal_to("max_events_per_run"))
    assert_that(len(events) - 1, greater_than_or_equal_to(budget))
    assert len(events) <= budget + 3, f"{len(events)} events for a budget of {budget}"
    assert_that(events, gapless_seqs(start=1))
    assert_that(end.data["data"]["event_count"], equal_to(len(events)))
