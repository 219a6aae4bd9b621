"""The control interface: which implementation a target gets, what each provides, that an
absent capability is refused by name, and that the HTTP client speaks docs/conformance.md §7 —
checked against a small HTTP server on loopback that records every request."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from agentevents.testing import gateways
from agentevents.testing.control import (
    Control,
    ControlError,
    ControlUnavailable,
    DockerControl,
    GatewayStats,
    HttpControl,
    NativeControl,
    NoControl,
    StoreUnavailable,
    blocking,
    control_for,
    jti_of,
)
from agentevents.testing.polling import poll
from agentevents.testing.profile import CONTROL_CAPABILITIES, Profile, load_profile, parse_profile
from agentevents.testing.world import StackTarget, TargetError

TARGETS = Path(__file__).resolve().parents[2] / "features" / "targets"
SECRET = "a-control-secret-of-at-least-32-bytes!"

# Every method of the interface, called with plausible arguments, and the capability it belongs to.
CALLS: list[tuple[str, Any, str]] = [
    ("fault", lambda c: c.fault("kill", "gateway1"), "fault_control"),
    ("crash", lambda c: c.crash("redis"), "fault_control"),
    ("release_restarts", lambda c: c.release_restarts(), "fault_control"),
    ("heal", lambda c: c.heal(), "fault_control"),
    ("answers", lambda c: c.answers("postgres"), "fault_control"),
    ("worker_of_run", lambda c: c.worker_of_run("r1"), "fault_control"),
    ("gateways", lambda c: c.gateways(), "process_stats"),
    ("gateway_stats", lambda c: c.gateway_stats(), "process_stats"),
    ("archived_events", lambda c: c.archived_events("t1"), "archive_query"),
    ("audit_rows", lambda c: c.audit_rows(["e1"]), "audit_query"),
    ("revoke_token", lambda c: c.revoke_token("j1"), "token_revocation"),
]


def refused(control: Control, call) -> ControlUnavailable:
    with pytest.raises(ControlUnavailable) as caught:
        asyncio.run(call(control))
    return caught.value


# -- which control a target gets --------------------------------------------------------------

def test_each_mode_gets_its_control(tmp_path, monkeypatch):
    monkeypatch.setenv("AE_STACK_DIR", str(tmp_path / "stack"))
    native = load_profile(TARGETS / "native.toml")
    endpoint = parse_profile(f"[control]\nurl = 'http://127.0.0.1:8099'\nsecret = '{SECRET}'\n")
    assert type(StackTarget("native", "ws://x", "s", profile=native).control) is NativeControl
    assert type(StackTarget("docker", "ws://x", "s", profile=native).control) is DockerControl
    assert type(StackTarget("external", "ws://x", "s", profile=native).control) is NoControl
    assert type(StackTarget("serve", "ws://x", "s", profile=native).control) is NoControl
    http = StackTarget("external", "ws://x", "s", profile=endpoint).control
    assert isinstance(http, HttpControl)
    assert (http.url, http.secret) == ("http://127.0.0.1:8099", SECRET)
    # The native stack's control is chosen without touching the stack: its URLs are read when first used.
    assert not (tmp_path / "stack").exists()


def test_a_control_given_to_the_target_is_kept():
    mine = DockerControl("redis://127.0.0.1:1/0")
    assert StackTarget("docker", "ws://x", "s", control=mine).control is mine
    assert control_for("docker", Profile("p")).redis_url == "redis://127.0.0.1:6381/0"


def test_provides_per_implementation():
    assert NativeControl().provides() == set(CONTROL_CAPABILITIES)
    assert DockerControl().provides() == {"fault_control"}
    assert HttpControl("http://127.0.0.1:1", SECRET).provides() == set(CONTROL_CAPABILITIES)
    assert NoControl().provides() == frozenset()


def test_a_targets_control_capabilities_are_what_its_control_provides():
    everything = load_profile(TARGETS / "native.toml")
    for control in (NativeControl(), DockerControl(), HttpControl("http://127.0.0.1:1", SECRET), NoControl()):
        target = StackTarget("external", "ws://x", "s", profile=everything, control=control)
        assert target.capabilities & set(CONTROL_CAPABILITIES) == control.provides(), type(control).__name__


# -- an absent capability is refused, by name --------------------------------------------------

@pytest.mark.parametrize(("method", "call", "capability"), CALLS, ids=[c[0] for c in CALLS])
def test_no_control_refuses_every_method_naming_its_capability(method, call, capability):
    error = refused(NoControl(), call)
    assert error.capability == capability
    assert f"does not provide {capability}" in str(error)


@pytest.mark.parametrize(("method", "call", "capability"),
                         [c for c in CALLS if c[2] != "fault_control"],
                         ids=[c[0] for c in CALLS if c[2] != "fault_control"])
def test_docker_control_refuses_what_it_cannot_see(method, call, capability):
    error = refused(DockerControl(), call)
    assert error.capability == capability
    assert "the docker stack" in str(error) and capability in str(error)


def test_every_capability_a_control_lacks_is_refused():
    for control in (NoControl(), DockerControl()):
        for _method, call, capability in CALLS:
            if capability not in control.provides():
                assert refused(control, call).capability == capability


def test_an_unknown_fault_action_is_refused_before_anything_is_sent():
    for control in (NativeControl(), DockerControl(), HttpControl("http://127.0.0.1:1", SECRET)):
        with pytest.raises(ValueError, match="unknown action 'explode'"):
            asyncio.run(control.fault("explode", "gateway1"))


def test_a_token_is_revoked_by_its_jti():
    token = jwt.encode({"sub": "alice", "jti": "9b2f6c1e"}, "k" * 32, algorithm="HS256")
    assert jti_of(token) == "9b2f6c1e"
    assert jti_of("9b2f6c1e") == "9b2f6c1e"
    with pytest.raises(ValueError, match="no jti"):
        jti_of(jwt.encode({"sub": "alice"}, "k" * 32, algorithm="HS256"))


# -- the HTTP client, against a recording server on loopback ----------------------------------

class Endpoint:
    """A control endpoint on 127.0.0.1 that answers from ``routes`` and records each request."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], tuple[int, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                endpoint.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                          "body": json.loads(raw) if raw else None})
                status, body = endpoint.routes.get((self.command, self.path), (404, {"error": {
                    "code": "not_found", "message": f"no route {self.path}"}}))
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def last(self) -> dict[str, Any]:
        return self.requests[-1]


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    served = Endpoint()
    thread = threading.Thread(target=served.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield served
    served.server.shutdown()
    served.server.server_close()
    thread.join(5)


@pytest.fixture
def client(endpoint: Endpoint) -> HttpControl:
    return HttpControl(endpoint.url, SECRET, timeout_s=5)


def test_every_request_carries_the_bearer_secret_and_json(endpoint, client):
    endpoint.routes[("POST", "/v1/components/gateway1/kill")] = (200, {"component": "gateway1", "state": "down"})
    asyncio.run(client.fault("kill", "gateway1"))
    sent = endpoint.last()
    assert sent["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert sent["headers"]["Content-Type"] == "application/json"
    assert (sent["method"], sent["path"], sent["body"]) == ("POST", "/v1/components/gateway1/kill", {})


def test_faults_crash_release_and_heal(endpoint, client):
    for name, action in (("redis", "kill"), ("redis", "start"), ("worker1", "pause")):
        endpoint.routes[("POST", f"/v1/components/{name}/{action}")] = (200, {"component": name})
    endpoint.routes[("POST", "/v1/heal")] = (200, {"healthy": True, "components": {}})
    asyncio.run(client.crash("redis"))
    assert (endpoint.last()["path"], endpoint.last()["body"]) == ("/v1/components/redis/kill", {"keep_down": True})
    asyncio.run(client.release_restarts())
    assert endpoint.last()["path"] == "/v1/components/redis/start"
    before = len(endpoint.requests)
    asyncio.run(client.release_restarts())  # nothing is kept down any more
    assert len(endpoint.requests) == before
    asyncio.run(client.fault("pause", "worker1"))
    assert endpoint.last()["path"] == "/v1/components/worker1/pause"
    asyncio.run(client.heal())
    assert (endpoint.last()["method"], endpoint.last()["path"], endpoint.last()["body"]) == ("POST", "/v1/heal", {})


def test_answers_and_the_worker_of_a_run(endpoint, client):
    endpoint.routes[("GET", "/v1/components")] = (200, {"components": [
        {"name": "postgres", "kind": "database", "state": "paused"},
        {"name": "redis", "kind": "bus", "state": "running"}]})
    endpoint.routes[("GET", "/v1/runs/r-1")] = (200, {"run_id": "r-1", "status": "running", "worker": "worker2"})
    endpoint.routes[("GET", "/v1/runs/r-2")] = (200, {"run_id": "r-2", "status": "queued", "worker": None})
    assert asyncio.run(client.answers("redis")) is True
    assert asyncio.run(client.answers("postgres")) is False
    with pytest.raises(ControlError, match="no component 'worker9'"):
        asyncio.run(client.answers("worker9"))
    assert asyncio.run(client.worker_of_run("r-1")) == "worker2"
    assert asyncio.run(client.worker_of_run("r-2")) is None


def test_gateway_statistics(endpoint, client):
    one = {"name": "gateway2", "ws_url": "ws://127.0.0.1:8002/ws", "connections": 3, "threads": 2,
           "open_fds": 47, "rss_bytes": 63438848}
    endpoint.routes[("GET", "/v1/gateways")] = (200, {"gateways": [
        {**one, "name": "gateway1", "ws_url": "ws://127.0.0.1:8001/ws", "connections": 0}, one]})
    endpoint.routes[("GET", "/v1/gateways/gateway2")] = (200, one)
    assert asyncio.run(client.gateways()) == ["gateway1", "gateway2"]
    every = asyncio.run(client.gateway_stats())
    assert list(every) == ["gateway1", "gateway2"]
    assert every["gateway1"].connections == 0
    alone = asyncio.run(client.gateway_stats("gateway2"))
    assert alone == {"gateway2": GatewayStats("gateway2", "ws://127.0.0.1:8002/ws", 3, 2, 47, 63438848)}
    assert endpoint.last()["path"] == "/v1/gateways/gateway2"
    assert alone["gateway2"].rss_mb == pytest.approx(60.5, abs=0.01)


def test_archived_events_keep_the_payload_as_text(endpoint, client):
    payload = '{"seq":1,"type":"agent_started","data":{"x":1.0}}'
    events = [{"seq": 1, "event_id": "e1", "run_id": "r1", "user_id": "u", "type": "agent_started",
               "payload": payload, "archived_at": "2026-11-25T15:16:33.412Z"}]
    endpoint.routes[("GET", "/v1/threads/t1/events?run_id=r1&since_seq=3")] = (200, {"thread_id": "t1",
                                                                                     "events": events})
    endpoint.routes[("GET", "/v1/threads/t%2F2/events")] = (200, {"thread_id": "t/2", "events": []})
    found = asyncio.run(client.archived_events("t1", run_id="r1", since_seq=3))
    assert found == events and found[0]["payload"] == payload
    assert asyncio.run(client.archived_events("t/2")) == []  # the thread id is one path segment


def test_audit_search_and_revocation(endpoint, client):
    row = {"event_id": "e1", "thread_id": "t1", "seq": 5, "user_id": "u", "connection_id": "conn_1",
           "server_id": "gateway2", "delivered_at": "2026-11-25T15:16:33.401Z"}
    endpoint.routes[("POST", "/v1/deliveries/search")] = (200, {"deliveries": [row]})
    endpoint.routes[("POST", "/v1/revocations")] = (201, {"revoked": {"jti": "j-9"}, "expires_in_s": 60})
    assert asyncio.run(client.audit_rows(["e1", "e2"], connection_id="conn_1")) == [row]
    assert endpoint.last()["body"] == {"event_ids": ["e1", "e2"], "connection_id": "conn_1"}
    asyncio.run(client.audit_rows(["e1"]))
    assert endpoint.last()["body"] == {"event_ids": ["e1"]}
    many = [f"e{i}" for i in range(10_001)]
    asyncio.run(client.audit_rows(many))  # at most 10 000 ids per search
    assert [len(r["body"]["event_ids"]) for r in endpoint.requests[-2:]] == [10_000, 1]
    token = jwt.encode({"sub": "alice", "jti": "j-9"}, "k" * 32, algorithm="HS256")
    asyncio.run(client.revoke_token(token, ttl_s=60))
    assert (endpoint.last()["path"], endpoint.last()["body"]) == ("/v1/revocations", {"jti": "j-9", "ttl_s": 60})


@pytest.mark.parametrize(("status", "body", "kind", "expected"), [
    (404, {"error": {"code": "unknown_component", "message": "no component named 'worker9'",
                     "details": {"components": ["worker1"]}}}, ControlError,
     "HTTP 404 unknown_component: no component named 'worker9'"),
    (401, {"error": {"code": "unauthorized", "message": "wrong secret"}}, ControlError,
     "HTTP 401 unauthorized: wrong secret"),
    (503, {"error": {"code": "unavailable", "message": "the archive is down"}}, StoreUnavailable,
     "HTTP 503 unavailable: the archive is down"),
    (500, b"<html>oops</html>", ControlError, "HTTP 500 http_error: <html>oops</html>"),
])
def test_an_error_answer_is_one_clear_exception(endpoint, client, status, body, kind, expected):
    endpoint.routes[("POST", "/v1/components/worker9/kill")] = (status, body)
    with pytest.raises(kind) as caught:
        asyncio.run(client.fault("kill", "worker9"))
    assert type(caught.value) is kind
    assert str(caught.value) == f"POST {endpoint.url}/v1/components/worker9/kill: {expected}"
    assert "\n" not in str(caught.value)
    assert caught.value.status == status
    if status == 404:
        assert caught.value.details == {"components": ["worker1"]}


def test_an_answer_without_its_member_or_not_json_is_an_error(endpoint, client):
    endpoint.routes[("GET", "/v1/gateways")] = (200, {"gateway": []})
    endpoint.routes[("GET", "/v1/components")] = (200, b"not json")
    with pytest.raises(ControlError, match="the answer has no 'gateways'"):
        asyncio.run(client.gateways())
    with pytest.raises(ControlError, match="the answer is not JSON"):
        asyncio.run(client.answers("redis"))


def test_an_endpoint_that_does_not_answer_is_an_error():
    with pytest.raises(ControlError, match="no answer from the control endpoint") as caught:
        asyncio.run(HttpControl("http://127.0.0.1:9", SECRET, timeout_s=2).heal())
    assert caught.value.code == "unreachable"


def test_discovery_checks_the_version_and_the_declared_capabilities(endpoint, client):
    profile = parse_profile("[capabilities]\ndeclared = ['fault_control', 'archive_query', 'approvals']\n", "p.toml")
    endpoint.routes[("GET", "/v1")] = (200, {"conformance_version": "1", "capabilities": ["fault_control"]})
    with pytest.raises(ControlError, match="declares archive_query but .* offers only fault_control"):
        asyncio.run(client.check(profile))
    endpoint.routes[("GET", "/v1")] = (200, {"conformance_version": "2", "capabilities": list(CONTROL_CAPABILITIES)})
    with pytest.raises(ControlError, match="speaks conformance_version '2'"):
        asyncio.run(client.check(profile))
    endpoint.routes[("GET", "/v1")] = (200, {"conformance_version": "1", "capabilities": list(CONTROL_CAPABILITIES)})
    asyncio.run(client.check(profile))
    assert endpoint.last()["path"] == "/v1"
    with pytest.raises(ControlError, match="secret is empty"):
        asyncio.run(HttpControl(endpoint.url, "").check(profile))


def test_an_external_target_checks_its_endpoint_at_start(endpoint):
    profile = parse_profile(f"[control]\nurl = '{endpoint.url}'\nsecret = '{SECRET}'\n"
                            "[capabilities]\ndeclared = ['audit_query']\n", "theirs.toml")
    endpoint.routes[("GET", "/v1")] = (200, {"conformance_version": "1", "capabilities": []})
    target = StackTarget("external", "ws://127.0.0.1:9/ws", "s", profile=profile)
    with pytest.raises(TargetError, match="declares audit_query") as caught:
        target.check_control()
    assert caught.value.usage  # the profile asks for what the endpoint does not offer
    endpoint.routes[("GET", "/v1")] = (200, {"conformance_version": "1", "capabilities": ["audit_query"]})
    target.check_control()
    assert [r["path"] for r in endpoint.requests] == ["/v1", "/v1"]


# -- polling and running from synchronous code -------------------------------------------------

def test_poll_returns_once_ready_or_the_last_value_at_the_deadline():
    seen: list[int] = []

    async def count() -> int:
        seen.append(len(seen) + 1)
        return seen[-1]

    assert asyncio.run(poll(count, lambda n: n >= 3, 5, 0.01)) == 3
    assert asyncio.run(poll(count, lambda n: n < 0, 0.05, 0.01)) > 3  # never ready: the last value


def test_settled_gateways_fail_with_the_last_statistics(endpoint, client):
    busy = {"name": "gateway1", "ws_url": "ws://g/ws", "connections": 2, "threads": 1, "open_fds": 9,
            "rss_bytes": 1}
    endpoint.routes[("GET", "/v1/gateways")] = (200, {"gateways": [busy]})
    with pytest.raises(AssertionError, match="connections stayed within 0.3 s; gateways now: .*connections=2"):
        asyncio.run(gateways.settled(client, lambda s: s["gateway1"].connections == 0, 0.3, "connections stayed"))
    endpoint.routes[("GET", "/v1/gateways")] = (200, {"gateways": [{**busy, "connections": 0}]})
    done = asyncio.run(gateways.settled(client, lambda s: s["gateway1"].connections == 0, 0.3, "closed"))
    assert done["gateway1"].connections == 0


def test_blocking_runs_a_coroutine_beside_an_event_loop():
    async def inside() -> str:
        return blocking(asyncio.sleep(0, result="done"))  # the caller's loop is running meanwhile

    assert asyncio.run(inside()) == "done"
