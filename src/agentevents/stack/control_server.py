"""The native stack's control endpoint (docs/conformance.md §7): the suite's second door, over HTTP.

It serves the same answers the suite's ``NativeControl`` gives in-process — components and
faults through the supervisor, gateway statistics, the archive and the delivery audit from
PostgreSQL, runs and revocations in Redis — so a profile that reaches the stack only from outside
(``features/targets/native-http.toml``) still runs every scenario, and the §7 client is proven
against a real server. Bound to loopback; every request needs ``Authorization: Bearer`` with the
stack's own secret (``.stack/control_secret``), compared in constant time.

    python -m agentevents.stack.control_server [--port N]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hmac
import os
import re
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from ..protocol.conformance import CONFORMANCE_VERSION
from ..testing.control import FAULT_ACTIONS, ControlError, NativeControl, StoreUnavailable
from ..testing.profile import CONTROL_CAPABILITIES
from . import native

HOST = "127.0.0.1"
PORT = native.CONTROL_PORT
MAX_BODY = 4 * 2**20
MAX_TTL_S = 86_400
KINDS = {"postgres": "database", "redis": "bus", "haproxy": "load_balancer"}


class Refused(Exception):
    """An answer other than 2xx: status, code and message, as §7.2 lists them."""

    def __init__(self, status: HTTPStatus, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def kind_of(component: str) -> str:
    return KINDS.get(component) or ("gateway" if component in native.GATEWAYS else
                                    "worker" if component in native.WORKERS else "other")


_last_pids: dict[str, int] = {}  # each component's process, as last seen while the supervisor answered


def _supervisor_frozen() -> bool:
    """A kept-down crash freezes the supervisor (native.crash); it cannot be asked anything then."""
    import psutil
    pid = native._supervisor_pid()
    try:
        return bool(pid) and psutil.Process(pid).status() == psutil.STATUS_STOPPED
    except psutil.Error:
        return False


def state_of(component: str) -> str:
    """running, paused (SIGSTOPped), stopped (no process), or down (killed, kept down)."""
    import psutil
    try:
        if _supervisor_frozen():
            pid = _last_pids.get(component)
            if pid is None:
                return "down"
        else:
            pid = _last_pids[component] = native.component_pid(component)
        status = psutil.Process(pid).status()
        if status == psutil.STATUS_ZOMBIE:  # killed, and its frozen supervisor has not reaped it
            raise psutil.NoSuchProcess(pid)
        return "paused" if status == psutil.STATUS_STOPPED else "running"
    except (SystemExit, psutil.NoSuchProcess):
        _last_pids.pop(component, None)
        return "down" if _supervisor_frozen() else "stopped"
    except psutil.Error:
        return "stopped"


def _component(name: str) -> str:
    if name not in native.COMPONENTS:
        raise Refused(HTTPStatus.NOT_FOUND, "unknown_component", f"no component named {name!r}",
                      {"components": list(native.COMPONENTS)})
    return name


def _body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        raise Refused(HTTPStatus.BAD_REQUEST, "bad_request", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise Refused(HTTPStatus.BAD_REQUEST, "bad_request", "the body must be a JSON object")
    return body


class Endpoint:
    """The routes of §7, each a coroutine returning (status, body)."""

    def __init__(self, control: NativeControl | None = None) -> None:
        self.control = control or NativeControl()

    async def handle(self, method: str, target: str, raw: bytes) -> tuple[HTTPStatus, dict[str, Any]]:
        parts = urlsplit(target)
        path = [unquote(p) for p in parts.path.strip("/").split("/")]
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        routes = [
            ("GET", ["v1"], self.discovery),
            ("GET", ["v1", "components"], self.components),
            ("POST", ["v1", "components", None, None], self.act),
            ("GET", ["v1", "runs", None], self.run),
            ("POST", ["v1", "heal"], self.heal),
            ("GET", ["v1", "gateways"], self.gateways),
            ("GET", ["v1", "gateways", None], self.gateway),
            ("GET", ["v1", "threads", None, "events"], self.events),
            ("POST", ["v1", "deliveries", "search"], self.deliveries),
            ("POST", ["v1", "revocations"], self.revoke),
        ]
        known_path = False
        for verb, shape, route in routes:
            if len(shape) == len(path) and all(s is None or s == p for s, p in zip(shape, path, strict=True)):
                known_path = True
                if verb == method:
                    args = [p for s, p in zip(shape, path, strict=True) if s is None]
                    return await route(*args, query=query, body=_body(raw) if method == "POST" else {})
        if known_path:
            raise Refused(HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed", f"{method} is not allowed here")
        raise Refused(HTTPStatus.NOT_FOUND, "not_found", f"no such path {parts.path}")

    async def discovery(self, **_: Any) -> tuple[HTTPStatus, dict[str, Any]]:
        return HTTPStatus.OK, {"conformance_version": CONFORMANCE_VERSION, "capabilities": list(CONTROL_CAPABILITIES),
                               "components": list(native.COMPONENTS)}

    async def components(self, **_: Any) -> tuple[HTTPStatus, dict[str, Any]]:
        states = await asyncio.to_thread(lambda: {c: state_of(c) for c in native.COMPONENTS})
        return HTTPStatus.OK, {"components": [{"name": c, "kind": kind_of(c), "state": s} for c, s in states.items()]}

    async def act(self, name: str, action: str, *, body: dict[str, Any], **_: Any) -> tuple[HTTPStatus, dict]:
        component = _component(name)
        if action not in FAULT_ACTIONS:
            raise Refused(HTTPStatus.NOT_FOUND, "not_found", f"no action {action!r}: {', '.join(FAULT_ACTIONS)}")
        keep_down = body.get("keep_down", False)
        if not isinstance(keep_down, bool):
            raise Refused(HTTPStatus.BAD_REQUEST, "bad_request", "keep_down must be true or false")
        state = await asyncio.to_thread(state_of, component)
        if (action == "resume" and state != "paused") or (action == "pause" and state == "paused"):
            raise Refused(HTTPStatus.CONFLICT, "invalid_state", f"{component} is {state}")
        started = time.monotonic()
        frozen = await asyncio.to_thread(_supervisor_frozen)
        if frozen and action != "start":
            raise Refused(HTTPStatus.CONFLICT, "invalid_state", "a component is kept down: start it (or heal) first")
        try:
            if frozen:  # the kept-down component: let the supervisor restart it, then make sure it runs
                await asyncio.to_thread(native.release_restarts)
            if action == "kill" and keep_down:
                # the supervisor is frozen from now on: remember every process while it still answers
                await asyncio.to_thread(lambda: [state_of(c) for c in native.COMPONENTS])
                await self.control.crash(component)
            else:
                await self.control.fault(action, component)
        except (ControlError, SystemExit, OSError) as exc:
            raise Refused(HTTPStatus.INTERNAL_SERVER_ERROR, "action_failed", str(exc)) from None
        state = "down" if action == "kill" and keep_down else await asyncio.to_thread(state_of, component)
        return HTTPStatus.OK, {"component": component, "action": action, "state": state,
                               "took_ms": round((time.monotonic() - started) * 1000)}

    async def run(self, run_id: str, **_: Any) -> tuple[HTTPStatus, dict[str, Any]]:
        worker = await self.control.worker_of_run(run_id)
        status = await self._run_status(run_id)
        if worker is None and status is None:
            raise Refused(HTTPStatus.NOT_FOUND, "not_found", f"no run {run_id!r}")
        return HTTPStatus.OK, {"run_id": run_id, "status": status, "worker": worker}

    async def _run_status(self, run_id: str) -> str | None:
        from ..testing.control import _redis_client
        client = _redis_client(self.control.redis_url)
        try:
            status = await client.hget(f"ae:run:{run_id}", "status")
        finally:
            await client.aclose()
        return status.decode() if isinstance(status, bytes) else status

    async def heal(self, **_: Any) -> tuple[HTTPStatus, dict[str, Any]]:
        try:
            await self.control.heal()
        except (ControlError, SystemExit, OSError) as exc:
            raise Refused(HTTPStatus.INTERNAL_SERVER_ERROR, "action_failed", str(exc)) from None
        states = await asyncio.to_thread(lambda: {c: state_of(c) for c in native.COMPONENTS})
        return HTTPStatus.OK, {"healthy": all(s == "running" for s in states.values()), "components": states}

    async def gateways(self, **_: Any) -> tuple[HTTPStatus, dict[str, Any]]:
        stats = await self.control.gateway_stats()
        return HTTPStatus.OK, {"gateways": [dataclasses.asdict(s) for s in stats.values()]}

    async def gateway(self, name: str, **_: Any) -> tuple[HTTPStatus, dict[str, Any]]:
        if name not in native.GATEWAYS:
            raise Refused(HTTPStatus.NOT_FOUND, "not_found", f"no gateway {name!r}")
        return HTTPStatus.OK, dataclasses.asdict((await self.control.gateway_stats(name))[name])

    async def events(self, thread_id: str, *, query: dict[str, str], **_: Any) -> tuple[HTTPStatus, dict]:
        since = query.get("since_seq", "0")
        if not since.isdigit():
            raise Refused(HTTPStatus.BAD_REQUEST, "bad_request", "since_seq must be a whole number")
        rows = await self.control.archived_events(thread_id, run_id=query.get("run_id") or None,
                                                  since_seq=int(since))
        return HTTPStatus.OK, {"thread_id": thread_id, "events": rows}

    async def deliveries(self, *, body: dict[str, Any], **_: Any) -> tuple[HTTPStatus, dict[str, Any]]:
        ids, connection = body.get("event_ids"), body.get("connection_id")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or len(ids) > 10_000:
            raise Refused(HTTPStatus.BAD_REQUEST, "bad_request", "event_ids must be a list of at most 10000 strings")
        if connection is not None and not isinstance(connection, str):
            raise Refused(HTTPStatus.BAD_REQUEST, "bad_request", "connection_id must be a string")
        return HTTPStatus.OK, {"deliveries": await self.control.audit_rows(ids, connection_id=connection)}

    async def revoke(self, *, body: dict[str, Any], **_: Any) -> tuple[HTTPStatus, dict[str, Any]]:
        jti, ttl = body.get("jti"), body.get("ttl_s", 3600)
        if "sub" in body:
            raise Refused(HTTPStatus.NOT_IMPLEMENTED, "not_offered", "revocation by sub is not offered here")
        if not isinstance(jti, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", jti):
            raise Refused(HTTPStatus.BAD_REQUEST, "bad_request", "jti must be a token id")
        if not isinstance(ttl, int) or isinstance(ttl, bool) or not 0 < ttl <= MAX_TTL_S:
            raise Refused(HTTPStatus.BAD_REQUEST, "bad_request", f"ttl_s must be 1..{MAX_TTL_S}")
        await self.control.revoke_token(jti, ttl_s=ttl)
        return HTTPStatus.CREATED, {"revoked": {"jti": jti}, "expires_in_s": ttl}


def make_handler(endpoint: Endpoint, secret: str) -> type[BaseHTTPRequestHandler]:
    expected = f"Bearer {secret}".encode()

    class Handler(BaseHTTPRequestHandler):
        server_version = "agentevents-control"

        def log_message(self, *_args: Any) -> None:  # one line per request would only repeat the suite
            pass

        def _answer(self, status: HTTPStatus, body: dict[str, Any]) -> None:
            data = orjson.dumps(body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _serve(self, method: str) -> None:
            try:
                given = (self.headers.get("Authorization") or "").encode()
                if not hmac.compare_digest(given, expected):
                    raise Refused(HTTPStatus.UNAUTHORIZED, "unauthorized", "no or wrong bearer secret")
                length = int(self.headers.get("Content-Length") or 0)
                if not 0 <= length <= MAX_BODY:
                    raise Refused(HTTPStatus.BAD_REQUEST, "bad_request", "body too large")
                raw = self.rfile.read(length) if length else b""
                status, body = asyncio.run(asyncio.wait_for(endpoint.handle(method, self.path, raw), 60))
            except Refused as refused:
                error = {"code": refused.code, "message": refused.message}
                if refused.details:
                    error["details"] = refused.details
                status, body = refused.status, {"error": error}
            except StoreUnavailable as exc:
                status, body = HTTPStatus.SERVICE_UNAVAILABLE, {"error": {"code": "unavailable", "message": str(exc)}}
            except Exception as exc:  # noqa: BLE001 (whatever broke, the caller gets one JSON answer)
                status, body = HTTPStatus.INTERNAL_SERVER_ERROR, {"error": {"code": "action_failed",
                                                                            "message": f"{type(exc).__name__}: {exc}"}}
            self._answer(status, body)

        def do_GET(self) -> None:  # noqa: N802 (http.server's names)
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

    return Handler


def serve(port: int = PORT, secret: str | None = None) -> ThreadingHTTPServer:
    secret = secret or native.control_secret()
    return ThreadingHTTPServer((HOST, port), make_handler(Endpoint(), secret))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="agentevents-control", description="the native stack's control endpoint")
    parser.add_argument("--port", type=int, default=int(os.environ.get("AE_CONTROL_PORT", PORT)),
                        help=f"port on {HOST} (default: {PORT})")
    args = parser.parse_args(argv)
    server = serve(args.port)
    print(f"control endpoint on http://{HOST}:{args.port}/v1", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
