"""The native stack's control endpoint (docs/conformance.md §7) and the suite's HTTP client,
together over loopback: authentication, routes, errors and bodies. The stack side is a stand-in
``Control`` (no supervisor here); the HTTP server and client are the real ones."""

from __future__ import annotations

import asyncio
import threading

import pytest

from agentevents.stack.control_server import Endpoint, make_handler
from agentevents.testing.control import Control, ControlError, GatewayStats, HttpControl, StoreUnavailable

SECRET = "control-test-secret-0123456789abcdef0123"


class Recording(Control):
    """Answers like a stack would, and keeps what it was asked."""

    def __init__(self) -> None:
        self.revoked: list[tuple[str, int]] = []

    async def gateway_stats(self, gateway=None):
        stats = {"gateway1": GatewayStats("gateway1", "ws://127.0.0.1:8001/ws", 2, 1, 40, 50_000_000)}
        return stats if gateway is None else {gateway: stats[gateway]}

    async def archived_events(self, thread_id, *, run_id=None, since_seq=0):
        if thread_id == "down":
            raise StoreUnavailable("the archive is down")
        return [{"seq": s, "payload": f'{{"seq":{s}}}', "run_id": run_id} for s in (1, 2, 3) if s > since_seq]

    async def audit_rows(self, event_ids, *, connection_id=None):
        return [{"event_id": e, "connection_id": connection_id} for e in event_ids]

    async def revoke_token(self, token_or_jti, *, ttl_s=3600):
        self.revoked.append((token_or_jti, ttl_s))

    async def worker_of_run(self, run_id):
        return "worker2" if run_id == "r1" else None


@pytest.fixture
def endpoint():
    from http.server import ThreadingHTTPServer
    control = Recording()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(Endpoint(control), SECRET))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", control
    server.shutdown()
    server.server_close()


def test_the_client_and_the_endpoint_agree_on_every_query(endpoint, monkeypatch):
    url, control = endpoint
    monkeypatch.setattr(Endpoint, "_run_status", lambda self, run_id: _status("running"))
    client = HttpControl(url, SECRET)
    stats = asyncio.run(client.gateway_stats())
    assert stats["gateway1"].connections == 2 and stats["gateway1"].rss_bytes == 50_000_000
    assert asyncio.run(client.gateways()) == ["gateway1"]
    events = asyncio.run(client.archived_events("t1", run_id="r9", since_seq=1))
    assert [e["seq"] for e in events] == [2, 3] and events[0]["run_id"] == "r9"
    rows = asyncio.run(client.audit_rows(["e1", "e2"], connection_id="conn_1"))
    assert rows == [{"event_id": "e1", "connection_id": "conn_1"}, {"event_id": "e2", "connection_id": "conn_1"}]
    asyncio.run(client.revoke_token("abc123", ttl_s=60))
    assert control.revoked == [("abc123", 60)]
    assert asyncio.run(client.worker_of_run("r1")) == "worker2"


def test_a_wrong_secret_is_refused_and_does_nothing(endpoint):
    url, control = endpoint
    with pytest.raises(ControlError) as caught:
        asyncio.run(HttpControl(url, "not-the-secret").revoke_token("abc123"))
    assert caught.value.status == 401 and caught.value.code == "unauthorized"
    assert control.revoked == []


def test_a_store_outage_is_503_unavailable(endpoint):
    url, _ = endpoint
    with pytest.raises(StoreUnavailable):
        asyncio.run(HttpControl(url, SECRET).archived_events("down"))


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), [
    ("GET", "/v1/nowhere", None, 404, "not_found"),
    ("GET", "/v1/heal", None, 405, "method_not_allowed"),
    ("POST", "/v1/components/worker9/kill", {}, 404, "unknown_component"),
    ("POST", "/v1/revocations", {"jti": "a b"}, 400, "bad_request"),
    ("POST", "/v1/revocations", {"jti": "abc", "ttl_s": 0}, 400, "bad_request"),
    ("POST", "/v1/revocations", {"sub": "alice"}, 501, "not_offered"),
    ("POST", "/v1/deliveries/search", {"event_ids": "e1"}, 400, "bad_request"),
    ("GET", "/v1/gateways/gateway9", None, 404, "not_found"),
    ("GET", "/v1/runs/unknown-run", None, 404, "not_found"),
])
def test_mistakes_get_the_documented_status_and_code(endpoint, method, path, body, status, code, monkeypatch):
    url, control = endpoint
    monkeypatch.setattr(Endpoint, "_run_status", lambda self, run_id: _status(None))
    with pytest.raises(ControlError) as caught:
        asyncio.run(HttpControl(url, SECRET)._call(method, path, body))
    assert (caught.value.status, caught.value.code) == (status, code), str(caught.value)
    assert control.revoked == []


async def _status(value: str | None) -> str | None:
    return value
