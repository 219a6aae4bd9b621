"""The published JSON Schemas against the frames the code really builds.

Three sources of frames: hand-built ones (``build_event`` plus a seq, and copies of the dict
literals in gateway/server.py and gateway/connection.py), frames produced by the real event
bridge and tool dispatcher over an in-memory bus, and frames produced by the real gateway
handlers over an in-memory bus, hub and history. Then mutations that must be refused.
"""

from __future__ import annotations

import asyncio
import copy
import json
from importlib import resources
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator, ValidationError
from memory_bus import MemoryBus
from wires import MemoryWire

from agentevents.auth import issue_token
from agentevents.config import Settings
from agentevents.gateway.connection import Connection
from agentevents.gateway.server import Gateway
from agentevents.protocol import envelope as ev
from agentevents.protocol.codes import ErrorCode
from agentevents.protocol.messages import MAX_MESSAGE_BYTES, ProtocolError, error_frame, parse_client_message
from agentevents.protocol.replay import ReplayPlan, assemble
from agentevents.protocol.schemas import (
    CONTROL_FRAME_TYPES,
    server_schema,
    validate_client_message,
    validate_server_frame,
)
from agentevents.tools import builtin_tools
from agentevents.tools.base import ToolContext
from agentevents.tools.dispatcher import ToolDispatcher
from agentevents.worker.bridge import EventBridge, RunContext

SCHEMA_ROOT = resources.files("agentevents.protocol").joinpath("schema")
PER_TYPE_EVENTS = ("agent_started", "agent_thinking", "tool_executing", "tool_progress", "tool_completed",
                   "agent_completed", "agent_error", "approval_required")
THREAD, RUN, USER = "5f0c3a1e9b7d4e2a8c6f1b3d5e7a9c0b", "0a9c7e5d3b1f4c6a8e2d4b7e9a1c3f5d", "alice-1234"
STAMP = "2026-11-25T14:52:36.123Z"


def schema_files(kind: str) -> list[str]:
    return sorted(e.name for e in SCHEMA_ROOT.joinpath(kind).iterdir() if e.name.endswith(".json"))


def event(event_type: str, data: dict[str, Any], seq: int = 1, agent_name: str = "math") -> dict[str, Any]:
    """An event as the bus delivers it: build_event plus the seq the Lua script puts first."""
    body = ev.build_event(event_type, thread_id=THREAD, run_id=RUN, user_id=USER, agent_name=agent_name, data=data)
    return orjson.loads(ev.splice_seq(orjson.dumps(body), seq))


def refused(frame: Any) -> ValidationError:
    with pytest.raises(ValidationError) as err:
        validate_server_frame(frame)
    return err.value


# -- the schema files -------------------------------------------------------------------------

def test_every_server_frame_and_event_type_has_a_schema_file():
    expected = {f"{name}.json" for name in (*CONTROL_FRAME_TYPES, "event", *PER_TYPE_EVENTS)}
    assert set(schema_files("server")) == expected


@pytest.mark.parametrize("kind", ["server", "client"])
def test_every_schema_file_is_a_valid_draft_2020_12_schema(kind):
    names = schema_files(kind)
    assert names, f"no {kind} schemas found"
    for name in names:
        schema = json.loads(SCHEMA_ROOT.joinpath(kind, name).read_text())
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema", name
        assert schema["$id"] == f"https://agentevents.dev/schema/{kind}/{name}", name


def test_enums_in_the_schemas_are_the_codes_enums():
    assert set(server_schema("event")["properties"]["type"]["enum"]) == ev.EVENT_TYPES
    assert set(server_schema("event")["required"]) == set(ev.ENVELOPE_FIELDS)
    tool_status = server_schema("tool_completed")["properties"]["data"]["properties"]["status"]["enum"]
    assert set(tool_status) == ev.TOOL_STATUSES
    run_status = server_schema("agent_completed")["properties"]["data"]["properties"]["status"]["enum"]
    assert set(run_status) == ev.COMPLETION_STATUSES
    error_codes = set(server_schema("error")["properties"]["code"]["enum"])
    assert error_codes == {c.value for c in ErrorCode} | {"token_expired"}


def test_per_type_event_schemas_refer_to_the_envelope():
    for name in PER_TYPE_EVENTS:
        schema = server_schema(name)
        assert {"$ref": "event.json"} in schema["allOf"], name
        assert schema["properties"]["type"] == {"const": name}


def test_server_schema_returns_a_copy():
    schema = server_schema("pong")
    schema["required"].append("surprise")
    assert "surprise" not in server_schema("pong")["required"]
    with pytest.raises(LookupError):
        server_schema("no_such_frame")


# -- hand-built frames: build_event + seq, and the literals of server.py / connection.py ------

VALID_EVENTS = {
    "agent_started": {"agent_type": "math", "message_preview": "What is 12*(3+4)?",
                      "description": "Solves arithmetic with the calculator tool"},
    "agent_thinking": {"reasoning": "Looking for the calculation in the question.", "step": 1,
                       "metadata": {"kind": "analysis"}},
    "tool_executing": {"tool_name": "calculator", "tool_call_id": "call_393d3155ad004868",
                       "parameters": {"expression": "12*(3+4)"}, "category": "math",
                       "description": "Evaluate an arithmetic expression", "purpose": "evaluate the expression"},
    "tool_completed": {"tool_name": "calculator", "tool_call_id": "call_393d3155ad004868", "status": "success",
                       "result": 84, "duration_ms": 0, "metadata": {"format": "number"},
                       "result_truncated": False, "result_bytes": 2},
    "agent_completed": {"status": "completed", "result": 84, "summary": "12*(3+4) = 84", "duration_ms": 9,
                        "event_count": 6, "result_truncated": False, "result_bytes": 2, "tool_calls": 1},
    "agent_error": {"code": "x", "message": "y", "recoverable": True},
    "approval_required": {"approval_id": "appr_93bfff540f54", "question": "ok?", "timeout_s": 10.0, "details": {}},
    "tool_progress": {"tool_name": "batch_job", "tool_call_id": "call_393d3155ad004868", "status": "running",
                      "batch": 1, "of": 3, "rows_done": 100, "partial_result": {"rows": 100}},
}


@pytest.mark.parametrize("event_type", sorted(VALID_EVENTS))
def test_built_events_validate(event_type):
    frame = event(event_type, copy.deepcopy(VALID_EVENTS[event_type]), seq=7)
    assert list(frame)[0] == "seq"
    validate_server_frame(frame)


def test_failed_tool_and_failed_run_shapes_validate():
    validate_server_frame(event("tool_completed", {
        "tool_name": "fail", "tool_call_id": "call_c9781f495c9c4ea7", "status": "error", "result": None,
        "duration_ms": 0, "metadata": {}, "error": {"code": "tool_failed", "message": "requested failure"},
        "result_truncated": False, "result_bytes": 4}))
    # the lost-run reaper's completion: error without a message
    validate_server_frame(event("agent_completed", {
        "status": "failed", "result": None, "summary": "The run was interrupted by a worker failure.",
        "duration_ms": 15774, "event_count": 2, "result_truncated": False, "result_bytes": 4,
        "error": {"code": "worker_lost"}}))


def control_frames() -> dict[str, dict[str, Any]]:
    """The dict literals of gateway/server.py and gateway/connection.py, with example values."""
    rid = "r-1"
    return {
        "connection_established": {
            "type": "connection_established", "connection_id": "conn_ceb1bed133ae426e", "user_id": USER,
            "server_id": "gateway1", "heartbeat_interval_ms": int(20.0 * 1000), "token_expires_at": 1795623060,
            "max_message_bytes": MAX_MESSAGE_BYTES, "protocol_version": 1, "server_time": ev.utc_timestamp()},
        "run_accepted": {"type": "run_accepted", "request_id": rid, "run_id": RUN, "thread_id": THREAD,
                         "agent_type": "math", "thread_created": True},
        "subscribed": {"type": "subscribed", "request_id": rid, "thread_id": THREAD, "head_seq": 6},
        "unsubscribed": {"type": "unsubscribed", "request_id": rid, "thread_id": THREAD, "was_subscribed": False},
        "replay_complete": {"type": "replay_complete", "thread_id": THREAD, "since_seq": 0, "head_seq": 6,
                            "count": 6, "complete": True, "duration_ms": 0, "request_id": rid},
        "resumed": {"type": "resumed", "request_id": rid,
                    "threads": {THREAD: {"complete": True, "count": 4, "head_seq": 6}}, "forbidden": ["not-mine"]},
        "cancel_accepted": {"type": "cancel_accepted", "request_id": rid, "run_id": RUN,
                            "previous_status": "running"},
        "respond_accepted": {"type": "respond_accepted", "request_id": rid, "run_id": RUN,
                             "approval_id": "appr_93bfff540f54"},
        "auth_refreshed": {"type": "auth_refreshed", "request_id": rid, "token_expires_at": 1795626660},
        "pong": {"type": "pong", "request_id": rid, "server_time": ev.utc_timestamp()},
        "error": {"type": "error", "code": "token_expired",
                  "message": "the token expired; reconnect with a fresh token"},
    }


@pytest.mark.parametrize("frame_type", CONTROL_FRAME_TYPES)
def test_control_frames_validate(frame_type):
    validate_server_frame(control_frames()[frame_type])


@pytest.mark.parametrize("frame_type", ["run_accepted", "subscribed", "unsubscribed", "resumed", "cancel_accepted",
                                        "respond_accepted", "auth_refreshed", "pong"])
def test_answers_to_a_message_without_request_id_leave_it_out(frame_type):
    frame = control_frames()[frame_type]
    frame.pop("request_id", None)
    validate_server_frame(frame)
    with pytest.raises(ValidationError):
        validate_server_frame({**frame, "request_id": None})


def test_incomplete_replay_and_gap_reports_validate():
    base = {"type": "replay_complete", "thread_id": THREAD, "since_seq": 2, "head_seq": 9, "count": 0,
            "complete": False, "duration_ms": 12}
    validate_server_frame({**base, "missing": [3, 5], "reason": "history_unavailable", "request_id": "r-1"})
    validate_server_frame({**base, "missing": [3, 9], "reason": "gap"})


def test_error_frames_from_the_message_parser_validate():
    bad = [b"{not json", b"[1, 2]", b'{"no_type": 1}', b'{"type": "launch", "request_id": "q"}',
           b'{"type": "start_agent", "message": "x", "request_id": "q2"}',
           b'{"type": "ping", "pad": "' + b"x" * MAX_MESSAGE_BYTES + b'"}']
    for raw in bad:
        with pytest.raises(ProtocolError) as err:
            parse_client_message(raw)
        e = err.value
        validate_server_frame(error_frame(e.code, e.message, e.request_id, e.details))
    for code, details in [(ErrorCode.RATE_LIMITED, {"retry_after_ms": 51}), (ErrorCode.TOO_MANY_RUNS, {"limit": 5}),
                          (ErrorCode.UNKNOWN_AGENT, {"agents": ["math"]}), (ErrorCode.INVALID_TOKEN, None),
                          (ErrorCode.FORBIDDEN, {"required_permission": "agents:script"}),
                          (ErrorCode.UNAVAILABLE, {"retry_after_ms": 1000})]:
        validate_server_frame(error_frame(code, "m", "r-9", details))


# -- mutations that must be refused -----------------------------------------------------------

def started() -> dict[str, Any]:
    return event("agent_started", copy.deepcopy(VALID_EVENTS["agent_started"]))


def test_an_event_without_seq_is_refused():
    frame = started()
    del frame["seq"]
    assert "'seq' is a required property" in refused(frame).message


@pytest.mark.parametrize("seq", [0, -1, 1.5, "1", None])
def test_seq_must_be_a_positive_integer(seq):
    frame = started()
    frame["seq"] = seq
    refused(frame)


@pytest.mark.parametrize("stamp", ["2026-11-25T14:52:36Z", "2026-11-25 14:52:36.123Z", "2026-11-25T14:52:36.123+00:00",
                                   "2026-11-25T14:52:36.1234Z", 1795623060])
def test_a_bad_timestamp_is_refused(stamp):
    frame = started()
    frame["timestamp"] = stamp
    assert "timestamp" in refused(frame).message


def test_missing_agent_type_is_refused():
    frame = started()
    del frame["data"]["agent_type"]
    err = refused(frame)
    assert "'agent_type' is a required property" in err.message
    assert list(err.absolute_path) == ["data"]


@pytest.mark.parametrize("field", [f for f in ev.ENVELOPE_FIELDS if f != "seq"])
def test_every_envelope_field_is_required(field):
    frame = event("agent_error", copy.deepcopy(VALID_EVENTS["agent_error"]))
    del frame[field]
    refused(frame)


def test_unknown_envelope_fields_are_refused():
    frame = started()
    frame["priority"] = "high"
    refused(frame)


def test_unknown_statuses_are_refused():
    completed = event("agent_completed", copy.deepcopy(VALID_EVENTS["agent_completed"]))
    completed["data"]["status"] = "fine"
    err = refused(completed)
    assert list(err.absolute_path) == ["data", "status"]
    assert "'fine' is not one of" in err.message
    tool = event("tool_completed", copy.deepcopy(VALID_EVENTS["tool_completed"]))
    tool["data"]["status"] = "exploded"
    assert "data/status: 'exploded' is not one of" in refused(tool).message


@pytest.mark.parametrize("event_type, field", [
    ("agent_thinking", "reasoning"), ("agent_thinking", "step"), ("agent_thinking", "metadata"),
    ("tool_executing", "tool_name"), ("tool_executing", "tool_call_id"), ("tool_executing", "parameters"),
    ("tool_completed", "tool_call_id"), ("tool_completed", "status"), ("tool_completed", "result"),
    ("tool_completed", "duration_ms"), ("agent_completed", "status"), ("agent_completed", "result"),
    ("agent_completed", "summary"), ("agent_completed", "duration_ms"), ("agent_error", "code"),
    ("agent_error", "message"), ("agent_error", "recoverable"), ("approval_required", "approval_id"),
    ("tool_progress", "tool_call_id"), ("tool_progress", "status"),
])
def test_required_data_fields_are_required(event_type, field):
    frame = event(event_type, copy.deepcopy(VALID_EVENTS[event_type]))
    del frame["data"][field]
    assert f"'{field}' is a required property" in refused(frame).message


def test_a_failed_tool_call_must_say_why_and_a_successful_one_must_not():
    failed = event("tool_completed", {**VALID_EVENTS["tool_completed"], "status": "timeout", "result": None})
    refused(failed)
    failed["data"]["error"] = {"code": "tool_timeout", "message": "too slow"}
    validate_server_frame(failed)
    ok = event("tool_completed", {**VALID_EVENTS["tool_completed"], "error": {"code": "x"}})
    refused(ok)
    undone = event("tool_completed", {**VALID_EVENTS["tool_completed"], "tool_name": "undo", "status": "rolled_back",
                                      "result": {"rolled_back": "call_x", "tool_name": None, "reason": ""}})
    validate_server_frame(undone)


def test_a_slow_tool_notice_says_how_slow():
    slow = {"tool_name": "wait", "tool_call_id": "call_5d2b156244a4479f", "status": "slow", "elapsed_ms": 2001,
            "expected_ms": 2000, "message": "wait is taking longer than usual"}
    validate_server_frame(event("tool_progress", dict(slow)))
    del slow["expected_ms"]
    assert "'expected_ms' is a required property" in refused(event("tool_progress", slow)).message
    refused(event("tool_progress", {**VALID_EVENTS["tool_progress"], "status": "done"}))


def test_extra_data_fields_are_allowed_but_typed_ones_are_checked():
    frame = event("agent_thinking", {**VALID_EVENTS["agent_thinking"], "burst_index": 3, "coalesced": 4})
    validate_server_frame(frame)
    frame["data"]["coalesced"] = 1
    refused(frame)
    frame = event("agent_error", {**VALID_EVENTS["agent_error"], "recoverable": "yes"})
    refused(frame)


def test_an_event_cannot_claim_another_type_than_its_schema():
    frame = event("agent_error", copy.deepcopy(VALID_EVENTS["agent_error"]))
    frame["type"] = "agent_started"
    assert "agent_type" in refused(frame).message


@pytest.mark.parametrize("frame_type, mutate", [
    ("connection_established", lambda f: f.update(protocol_version=2)),
    ("connection_established", lambda f: f.pop("server_time")),
    ("run_accepted", lambda f: f.pop("thread_created")),
    ("run_accepted", lambda f: f.update(thread_id="../etc")),
    ("subscribed", lambda f: f.update(head_seq=-1)),
    ("replay_complete", lambda f: f.update(complete=False)),
    ("replay_complete", lambda f: f.update(reason="gap")),
    ("resumed", lambda f: f["threads"][THREAD].pop("head_seq")),
    ("resumed", lambda f: f.update(forbidden=[])),
    ("cancel_accepted", lambda f: f.update(previous_status="exploded")),
    ("pong", lambda f: f.pop("server_time")),
    ("pong", lambda f: f.update(extra=1)),
    ("error", lambda f: f.update(code="oops")),
    ("error", lambda f: f.update(request_id=None)),
    ("error", lambda f: f.update(details={})),
])
def test_mutated_control_frames_are_refused(frame_type, mutate):
    frame = control_frames()[frame_type]
    mutate(frame)
    refused(frame)


@pytest.mark.parametrize("frame", [None, [], "pong", {}, {"type": 7}, {"type": "agent_exploded"}, {"type": "ping"}])
def test_unknown_or_missing_types_are_refused(frame):
    refused(frame)


def test_client_messages_are_validated_by_their_type():
    validate_client_message({"type": "subscribe", "thread_id": THREAD, "since_seq": 0, "request_id": "r"})
    validate_client_message({"type": "resume", "threads": {THREAD: 3}})
    for bad in [{"type": "subscribe", "thread_id": THREAD, "since_seq": -1}, {"type": "ping", "x": 1},
                {"type": "start_agent", "message": "m"}, {"type": "pong"}, {"no": "type"}]:
        with pytest.raises(ValidationError):
            validate_client_message(bad)


# -- frames produced by the real bridge and dispatcher ----------------------------------------

def bridge_frames() -> list[dict[str, Any]]:
    async def scenario() -> list[dict[str, Any]]:
        from agentevents.agents.base import AgentContext

        bus = MemoryBus()
        run = RunContext(run_id=RUN, thread_id=THREAD, user_id=USER, agent_type="math",
                         message="What is 12*(3+4)? mail bob@example.com", options={},
                         permissions=frozenset(), tier="free", requested_at=0.0)
        bridge = EventBridge(bus, run, thinking_burst=3)
        tools = ToolDispatcher(builtin_tools(), bridge, ToolContext(user_id=USER, thread_id=THREAD, run_id=RUN))
        ctx = AgentContext(run, bridge, tools, bus)
        await bridge.started(description="Solves arithmetic with the calculator tool")
        for i in range(6):  # beyond the burst: coalesced on the next event
            await ctx.think(f"step {i}", kind="plan")
        await ctx.think("x" * 5000)
        await ctx.call_tool("calculator", {"expression": "12*(3+4)"}, purpose="evaluate")
        await ctx.call_tool("fail", {"code": "boom", "message": "requested"})
        await ctx.call_tool("calculator", {"nope": 1})
        await ctx.call_tool("sql_query", {"query": "SELECT 1"})
        await ctx.call_tool("no_such_tool", {})
        await ctx.call_tool("echo", {"value": list(range(10000))})
        await ctx.call_tool("batch_job", {"batches": 2, "rows_per_batch": 5, "delay_s": 0})
        await ctx.ask_approval("Go on?", timeout_s=5)
        await ctx.error("x", "y", recoverable=True)
        await bridge.completed("partial", result="z" * 40000, summary="s", duration_ms=12, tool_calls=6)
        return [orjson.loads(p) for _, p in bus.payloads[THREAD]]

    return asyncio.run(scenario())


def test_every_event_the_bridge_publishes_validates():
    frames = bridge_frames()
    types = [f["type"] for f in frames]
    assert types[0] == "agent_started" and types[-1] == "agent_completed"
    assert {"agent_thinking", "tool_executing", "tool_progress", "tool_completed", "approval_required",
            "agent_error"} <= set(types)
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
    statuses = {f["data"]["status"] for f in frames if f["type"] == "tool_completed"}
    assert statuses == {"success", "error", "invalid_parameters", "permission_denied"}
    assert any(f["data"].get("coalesced") for f in frames if f["type"] == "agent_thinking")
    assert any(f["data"].get("truncated") for f in frames if f["type"] == "agent_thinking")
    assert any(f["data"].get("redactions") for f in frames if f["type"] == "agent_started")
    assert frames[-1]["data"]["result_truncated"] is True
    for frame in frames:
        validate_server_frame(frame)


# -- frames produced by the real gateway handlers ---------------------------------------------

SECRET = "unit-test-secret-unit-test-secret"


class MemoryHub:
    async def join(self, thread_id: str, conn: Any) -> None:
        return None

    async def leave(self, thread_id: str, conn: Any) -> None:
        return None


class MemoryHistory:
    def __init__(self, bus: MemoryBus, *, lose: bool = False) -> None:
        self.bus, self.lose = bus, lose

    async def fetch(self, thread_id: str, since: int, head: int):
        stored = [] if self.lose else self.bus.payloads.get(thread_id, [])
        return assemble(ReplayPlan(since, head), stored)


def gateway_frames() -> list[dict[str, Any]]:
    async def scenario() -> list[dict[str, Any]]:
        settings = Settings(jwt_secret=SECRET, redis_url="redis://127.0.0.1:1/0", server_id="gateway-test")
        gateway = Gateway(settings)
        bus = MemoryBus()
        gateway.bus, gateway.hub, gateway.history = bus, MemoryHub(), MemoryHistory(bus)
        token = issue_token(USER, key=SECRET, permissions=["agents:script"])
        socket = MemoryWire()
        conn = Connection(gateway, socket, gateway.verify(token), "conn_0123456789abcdef")
        await gateway.on_ping(conn, {"type": "ping", "request_id": "p1"})
        await gateway.on_ping(conn, {"type": "ping"})
        await gateway.on_start_agent(conn, {"type": "start_agent", "request_id": "s1", "agent_type": "math",
                                            "message": "1+1"})
        run_id = next(iter(bus.runs))
        thread_id = bus.runs[run_id]["thread_id"]
        for etype in ("agent_started", "agent_thinking"):
            await bus.publish_event(ev.build_event(etype, thread_id=thread_id, run_id=run_id, user_id=USER,
                                                   agent_name="math", data=VALID_EVENTS[etype]))
        await gateway.on_subscribe(conn, {"type": "subscribe", "request_id": "sub1", "thread_id": thread_id,
                                          "since_seq": 0})
        bus.owners["someone-else"] = "mallory"
        await gateway.on_resume(conn, {"type": "resume", "request_id": "res1",
                                       "threads": {thread_id: 1, "someone-else": 0}})
        await gateway.on_unsubscribe(conn, {"type": "unsubscribe", "request_id": "u1", "thread_id": thread_id})
        gateway.history = MemoryHistory(bus, lose=True)
        await gateway.on_resume(conn, {"type": "resume", "threads": {thread_id: 0}})
        await gateway.on_cancel_agent(conn, {"type": "cancel_agent", "request_id": "c1", "run_id": run_id})
        await gateway.on_respond(conn, {"type": "respond", "request_id": "a1", "run_id": run_id,
                                        "approval_id": "appr_1", "approved": False})
        longer = issue_token(USER, key=SECRET, ttl_s=7200)
        await gateway.on_auth_refresh(conn, {"type": "auth_refresh", "request_id": "t1", "token": longer})
        for raw in ['{"type": "auth_refresh", "request_id": "t2", "token": "bad"}', "nope",
                    '{"type": "start_agent", "request_id": "s2", "agent_type": "ghost", "message": "x"}',
                    '{"type": "cancel_agent", "request_id": "c2", "run_id": "not-mine"}']:
            await gateway._receive(conn, raw)
        await conn.shutdown()
        return socket.sent

    return asyncio.run(scenario())


def test_every_frame_the_gateway_handlers_send_validates():
    frames = gateway_frames()
    types = [f["type"] for f in frames]
    for wanted in ("pong", "run_accepted", "subscribed", "replay_complete", "resumed", "unsubscribed",
                   "cancel_accepted", "respond_accepted", "auth_refreshed", "error", "agent_started"):
        assert wanted in types, wanted
    pongs = [f for f in frames if f["type"] == "pong"]
    assert [p.get("request_id") for p in pongs] == ["p1", None]
    assert "request_id" not in pongs[1]  # absent, not null, when the client sent none
    lost = [f for f in frames if f["type"] == "replay_complete" and not f["complete"]]
    assert lost and lost[0]["reason"] == "history_unavailable" and lost[0]["missing"] == [1, 2]
    assert [f.get("forbidden") for f in frames if f["type"] == "resumed"] == [["someone-else"], None]
    codes = [f["code"] for f in frames if f["type"] == "error"]
    assert codes == ["invalid_token", "malformed_message", "unknown_agent", "forbidden"]
    for frame in frames:
        validate_server_frame(frame)
