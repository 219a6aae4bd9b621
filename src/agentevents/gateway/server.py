"""The gateway process: authenticates the handshake, then serves the client protocol.

No run state lives here: runs go to workers through Redis, events come back through the hub.
A gateway can be killed at any moment; clients reconnect (through HAProxy, to any gateway) and
``resume`` with their last seq per thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import time
import uuid
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import orjson
from redis.exceptions import RedisError
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .. import revocation, store
from ..agents.registry import AgentRegistry, UnknownAgent, default_registry
from ..auth import AuthError, Claims, may_refresh, token_from_handshake, verify_token
from ..bus import Bus, connect
from ..config import Settings
from ..metrics import CLIENT_ERRORS, CONNECTIONS, HANDSHAKE_REFUSED, REPLAYS
from ..protocol.codes import CloseCode, ErrorCode
from ..protocol.envelope import new_id, utc_timestamp
from ..protocol.messages import (
    MAX_MESSAGE_BYTES,
    ProtocolError,
    error_frame,
    parse_client_message,
    peek_request_id,
)
from .connection import Connection
from .history import History
from .hub import Hub, Notices

log = logging.getLogger("agentevents.gateway")

HARD_MAX_FRAME = 1024 * 1024
AUDIT_FLUSH_S = 0.5  # how long a delivery may wait in its connection's range before it is handed to the audit
# Connections whose ranges are handed over before the hand-over lets the event loop run again:
# with thousands of connections one pass would hold back live delivery for milliseconds.
AUDIT_FLUSH_SLICE = 100
SUBPROTOCOL = "jwt-auth"


class LazyPool:
    """An asyncpg pool created on first use and re-created after failures."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.pool: Any = None
        self._lock = asyncio.Lock()

    async def get(self) -> Any:
        async with self._lock:
            if self.pool is None:
                self.pool = await store.create_pool(self.dsn, max_size=4)
            return self.pool

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()


class GatewayConnection(ServerConnection):
    """A server connection that carries its verified claims from ``process_request`` to the handler.

    They live on the connection, not in a table of the gateway's: a handshake that fails after
    ``process_request`` (the client goes away, the upgrade is invalid, the server is closing) leaves
    nothing behind.
    """

    claims: Claims | None = None


class Gateway:
    def __init__(self, settings: Settings, registry: AgentRegistry | None = None) -> None:
        self.settings = settings
        self.key = settings.verification_key()
        self.registry = registry or default_registry()
        self.redis = connect(settings.redis_url)
        self.bus = Bus(self.redis, history_maxlen=settings.history_maxlen, history_ttl_s=settings.history_ttl_s)
        self.database = LazyPool(settings.database_url)
        self.history = History(self.bus, self.database)
        self.hub = Hub(self.redis, settings.server_id, notices={
            revocation.CHANNEL: Notices(self.on_revocation, self.check_revocations_now)})
        self.audit = store.BatchWriter(settings.database_url)
        self.audit_dirty: set[Connection] = set()  # connections with delivery ranges not yet handed over
        self.connections: dict[str, Connection] = {}
        self.stopping = asyncio.Event()
        self._revocation_check = asyncio.Event()

    def audit_range(self, conn: Connection, thread_id: str, span: list[Any]) -> None:
        """One delivery-audit row: seqs ``span[0]..span[1]`` of a thread, written one after
        another to this connection between ``span[2]`` and ``span[3]`` (Unix times)."""
        self.audit.add("delivery_ranges", (thread_id, span[0], span[1], conn.user_id, conn.id, self.settings.server_id,
                                           datetime.fromtimestamp(span[2], UTC), datetime.fromtimestamp(span[3], UTC)))

    async def _flush_audit_ranges(self) -> None:
        """Every AUDIT_FLUSH_S, the ranges of every connection that delivered meanwhile."""
        while True:
            await asyncio.sleep(AUDIT_FLUSH_S)
            await self.hand_over_ranges()

    async def hand_over_ranges(self) -> int:
        """Hand the ranges of every connection that delivered since the last time to the audit
        writer, ``AUDIT_FLUSH_SLICE`` connections at a time with the loop let run between them (a
        delivery meanwhile extends a range not yet handed over, or starts one that the next
        hand-over takes). Returns how many connections it took."""
        dirty, self.audit_dirty = list(self.audit_dirty), set()
        for start in range(0, len(dirty), AUDIT_FLUSH_SLICE):
            if start:
                await asyncio.sleep(0)
            for conn in dirty[start:start + AUDIT_FLUSH_SLICE]:
                conn.flush_ranges()
        return len(dirty)

    def count_replay(self, complete: bool) -> None:
        REPLAYS.labels(str(complete).lower()).inc()

    def verify(self, token: str) -> Claims:
        return verify_token(token, key=self.key, algorithm=self.settings.jwt_algorithm,
                            issuer=self.settings.jwt_issuer, audience=self.settings.jwt_audience)

    # -- handshake --------------------------------------------------------------------------
    async def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/health":
            # Liveness: 200 while this process serves. A Redis outage hits every gateway alike, so
            # it must not make the load balancer cut every session; it shows in the body instead.
            return self._json_response(connection, HTTPStatus.OK, await self.health())
        if path == "/metrics":
            from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
            response = connection.respond(HTTPStatus.OK, generate_latest().decode())
            response.headers["Content-Type"] = CONTENT_TYPE_LATEST
            return response
        if path != "/ws":
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        offered = [p.strip() for h in request.headers.get_all("Sec-WebSocket-Protocol") for p in h.split(",")]
        authorizations = request.headers.get_all("Authorization")
        try:
            if len(authorizations) > 1:  # which one would count? neither: refused, not a 500
                raise AuthError("more than one Authorization header")
            token = token_from_handshake(authorizations[0] if authorizations else None, offered)
            claims = self.verify(token or "")
            if await self._revoked(claims):
                raise AuthError("token revoked")
        except AuthError as exc:
            HANDSHAKE_REFUSED.labels(exc.reason.split(" ")[0]).inc()
            log.info("handshake_refused reason=%s remote=%s", exc.reason, connection.remote_address)
            response = connection.respond(HTTPStatus.UNAUTHORIZED, f"unauthorized: {exc.reason}\n")
            response.headers["WWW-Authenticate"] = f'Bearer error="invalid_token", error_description="{exc.reason}"'
            return response
        connection.claims = claims  # type: ignore[attr-defined]  # a GatewayConnection
        return None

    async def _revoked(self, claims: Claims) -> bool:
        try:
            return await revocation.is_revoked(self.redis, claims.jti, claims.user_id)
        except (RedisError, OSError):
            return False  # Redis down: the signature and expiry checks still hold

    # -- revocation of open connections -----------------------------------------------------
    def on_revocation(self, raw: bytes) -> None:
        """A token or a user was revoked: close the connections running on it, now."""
        jti, user_id = revocation.parse_notice(raw)
        for conn in list(self.connections.values()):
            if (jti is not None and conn.claims.jti == jti) or (user_id is not None and conn.user_id == user_id):
                self._close_revoked(conn)

    def check_revocations_now(self) -> None:
        """Notices may have been missed (the hub just (re)subscribed): check every connection."""
        self._revocation_check.set()

    def _close_revoked(self, conn: Connection) -> None:
        if conn.closing:
            return
        log.info("token_revoked %s jti=%s", conn.log_fields(), conn.claims.jti)
        conn.close(CloseCode.TOKEN_REVOKED, "token revoked")

    async def sweep_revocations(self) -> int:
        """Close every open connection whose token is revoked now; how many were closed."""
        current = {conn.id: (conn.claims.jti, conn.user_id) for conn in self.connections.values()}
        if not current:
            return 0
        revoked = await revocation.revoked_among(self.redis, current.values())
        closed = 0
        for conn_id, token in current.items():
            conn = self.connections.get(conn_id)
            # Still open, and still on that token (not refreshed meanwhile).
            if token in revoked and conn is not None and (conn.claims.jti, conn.user_id) == token:
                closed += not conn.closing
                self._close_revoked(conn)
        return closed

    async def _watch_revocations(self) -> None:
        """The check under the notices: a key set without a notice is found within one interval."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._revocation_check.wait(), self.settings.revocation_check_s)
            self._revocation_check.clear()
            try:
                await self.sweep_revocations()
            except (RedisError, OSError) as exc:
                log.warning("revocation_check_failed error=%s", exc)
            except Exception:  # the next round tries again
                log.exception("revocation_check_failed")

    @staticmethod
    def _json_response(connection: ServerConnection, status: HTTPStatus, body: dict[str, Any]) -> Response:
        response = connection.respond(status, orjson.dumps(body).decode())
        response.headers["Content-Type"] = "application/json"
        return response

    @staticmethod
    def select_subprotocol(connection: ServerConnection, subprotocols: list[str]) -> str | None:
        return SUBPROTOCOL if SUBPROTOCOL in subprotocols else None

    async def health(self) -> dict[str, Any]:
        return {"status": "ok" if self.hub.healthy else "degraded", "component": "gateway",
                "id": self.settings.server_id, "redis": self.hub.healthy, "connections": len(self.connections),
                "threads": len(self.hub.local), "audit_pending": self.audit.pending()}

    # -- connection -------------------------------------------------------------------------
    async def handler(self, ws: ServerConnection) -> None:
        claims = getattr(ws, "claims", None)
        if claims is None:  # cannot happen: process_request refuses first
            await ws.close(CloseCode.TOKEN_INVALID, "unauthenticated")
            return
        # The handshake's headers (the token among them) are of no further use: an open connection
        # keeps only what it needs.
        for message in (getattr(ws, "request", None), getattr(ws, "response", None)):
            if message is not None:
                message.headers = Headers()
        conn = Connection(self, ws, claims, "conn_" + uuid.uuid4().hex[:16])
        self.connections[conn.id] = conn
        CONNECTIONS.inc()
        try:  # from here on, whatever fails, the connection is counted out again below
            log.info("connected %s", conn.log_fields())
            self._expire_later(conn)
            conn.send_frame({"type": "connection_established", "connection_id": conn.id, "user_id": conn.user_id,
                             "server_id": self.settings.server_id, "heartbeat_interval_ms":
                             int(self.settings.heartbeat_interval_s * 1000), "token_expires_at": claims.exp,
                             "max_message_bytes": MAX_MESSAGE_BYTES, "protocol_version": 1,
                             "server_time": utc_timestamp()})
            async for raw in ws:
                await self._receive(conn, raw)
        except ConnectionClosed:
            pass
        finally:
            self.connections.pop(conn.id, None)
            CONNECTIONS.dec()
            if conn.expiry is not None:
                conn.expiry.cancel()
            await conn.shutdown()
            log.info("disconnected %s code=%s dropped_duplicates=%d", conn.log_fields(), ws.close_code,
                     conn.duplicates_dropped)

    def _expire_later(self, conn: Connection) -> asyncio.TimerHandle | None:
        """Close with TOKEN_EXPIRED once the token (plus grace) runs out without auth_refresh: a
        timer per connection (no task), which looks at the claims again when it fires."""
        wait = conn.claims.exp + self.settings.token_grace_s - time.time()
        if wait <= 0:
            conn.send_frame({"type": "error", "code": ErrorCode.TOKEN_EXPIRED.value,
                             "message": "the token expired; reconnect with a fresh token"})
            conn.close(CloseCode.TOKEN_EXPIRED, "token expired")
            conn.expiry = None
        else:
            conn.expiry = asyncio.get_running_loop().call_later(min(wait, 60), self._expire_later, conn)
        return conn.expiry

    def _error(self, conn: Connection, err: ProtocolError) -> None:
        CLIENT_ERRORS.labels(str(err.code)).inc()
        conn.send_frame(error_frame(err.code, err.message, err.request_id, err.details))
        if not conn.errors.allow(time.monotonic()):
            log.warning("too_many_errors %s", conn.log_fields())
            conn.close(CloseCode.TOO_MANY_ERRORS, "too many invalid messages")

    async def _receive(self, conn: Connection, raw: str | bytes) -> None:
        request_id = None
        try:
            if not conn.inbound.allow(time.monotonic()):
                raise ProtocolError(ErrorCode.RATE_LIMITED, "too many messages", peek_request_id(raw),
                                    details={"retry_after_ms": int(conn.inbound.retry_after() * 1000) + 1})
            message = parse_client_message(raw)
            request_id = message.get("request_id")
            await getattr(self, "on_" + message["type"])(conn, message)
        except ProtocolError as err:
            if err.request_id is None and request_id is not None:
                err = ProtocolError(err.code, err.message, request_id, err.details)
            self._error(conn, err)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("backend_unavailable %s error=%s", conn.log_fields(), exc)
            self._error(conn, ProtocolError(ErrorCode.UNAVAILABLE, "temporarily unavailable; retry",
                                            request_id, {"retry_after_ms": 1000}))

    # -- ownership --------------------------------------------------------------------------
    async def owns(self, user_id: str, thread_id: str) -> bool:
        owner = await self.bus.thread_owner(thread_id)
        if owner is None:
            try:
                owner = await store.thread_owner(await self.database.get(), thread_id)
            except Exception as exc:
                log.warning("owner_lookup_failed thread_id=%s error=%s", thread_id, exc)
        return owner == user_id

    async def _require_thread(self, conn: Connection, thread_id: str, request_id: str | None) -> None:
        if not await self.owns(conn.user_id, thread_id):
            raise ProtocolError(ErrorCode.FORBIDDEN, "no access to this thread", request_id)

    async def _require_run(self, conn: Connection, run_id: str, request_id: str | None) -> dict[str, str]:
        info = await self.bus.run_info(run_id)
        if info.get("user_id") != conn.user_id:
            raise ProtocolError(ErrorCode.FORBIDDEN, "no access to this run", request_id)
        return info

    # -- messages ---------------------------------------------------------------------------
    async def on_ping(self, conn: Connection, msg: dict[str, Any]) -> None:
        """A heartbeat overtakes queued events; ``in_order: true`` makes the pong a barrier behind them."""
        pong = {"type": "pong", "request_id": msg.get("request_id"), "server_time": utc_timestamp()}
        if msg.get("in_order") is True:
            conn.send_frame({**pong, "in_order": True}, in_order=True)
        else:
            conn.send_frame(pong)

    async def on_start_agent(self, conn: Connection, msg: dict[str, Any]) -> None:
        rid = msg.get("request_id")
        agent_type = msg["agent_type"]
        try:
            spec = self.registry.spec(agent_type)
        except UnknownAgent:
            raise ProtocolError(ErrorCode.UNKNOWN_AGENT, f"unknown agent {agent_type[:64]!r}", rid,
                                {"agents": self.registry.names()}) from None
        if spec.permission and not conn.claims.has(spec.permission):
            raise ProtocolError(ErrorCode.FORBIDDEN, f"agent {agent_type!r} needs the {spec.permission!r} permission",
                                rid, {"required_permission": spec.permission})
        thread_id = msg.get("thread_id")
        created = thread_id is None
        if not created:
            await self._require_thread(conn, thread_id, rid)
        else:
            thread_id = new_id()
        run_id = new_id()
        request = {"run_id": run_id, "thread_id": thread_id, "user_id": conn.user_id, "agent_type": agent_type,
                   "message": msg["message"], "options": msg.get("options") or {},
                   "permissions": sorted(conn.claims.permissions), "tier": conn.claims.tier,
                   "requested_at": time.time(), "connection_id": conn.id}
        limit = self.settings.tier_run_limits[conn.claims.tier]
        # The one write before the run is queued is the run's slot, given back if anything fails;
        # a new thread is claimed in the same step that queues the run.
        if not await self.bus.reserve_run(conn.user_id, run_id, limit):
            raise ProtocolError(ErrorCode.TOO_MANY_RUNS, f"at most {limit} concurrent runs on the "
                                f"{conn.claims.tier} tier", rid, {"limit": limit})
        try:
            await conn.follow(thread_id, None, rid, hold=True)
            if not await self.bus.submit_run(request, new_thread_at=utc_timestamp() if created else None):
                raise ProtocolError(ErrorCode.UNAVAILABLE, "could not start the run; retry", rid,
                                    {"retry_after_ms": 1000})
        except BaseException:
            await conn.unfollow(thread_id)
            try:
                await self.bus.release_run(conn.user_id, run_id)
            except (RedisError, OSError) as exc:  # the slot expires with the user's active set
                log.warning("release_run_failed %s run_id=%s error=%s", conn.log_fields(), run_id, exc)
            raise
        conn.send_frame({"type": "run_accepted", "request_id": rid, "run_id": run_id, "thread_id": thread_id,
                         "agent_type": agent_type, "thread_created": created})
        conn.release(thread_id)
        log.info("run_accepted %s thread_id=%s run_id=%s agent=%s", conn.log_fields(), thread_id, run_id,
                 agent_type)

    async def on_subscribe(self, conn: Connection, msg: dict[str, Any]) -> None:
        rid, thread_id = msg.get("request_id"), msg["thread_id"]
        await self._require_thread(conn, thread_id, rid)
        head = await self.bus.head_seq(thread_id)
        conn.send_frame({"type": "subscribed", "request_id": rid, "thread_id": thread_id, "head_seq": head})
        await conn.follow(thread_id, msg.get("since_seq"), rid)

    async def on_unsubscribe(self, conn: Connection, msg: dict[str, Any]) -> None:
        was = await conn.unfollow(msg["thread_id"])
        # In order: what was already queued of the thread arrives before the answer, nothing after it.
        conn.send_frame({"type": "unsubscribed", "request_id": msg.get("request_id"), "thread_id": msg["thread_id"],
                         "was_subscribed": was}, in_order=True)

    async def on_resume(self, conn: Connection, msg: dict[str, Any]) -> None:
        rid = msg.get("request_id")
        results: dict[str, Any] = {}
        forbidden: list[str] = []
        for thread_id, since in msg["threads"].items():
            if not await self.owns(conn.user_id, thread_id):
                forbidden.append(thread_id)
                continue
            report = await conn.follow(thread_id, since, rid)
            results[thread_id] = {k: report[k] for k in ("complete", "count", "head_seq")} if report else {}
        frame: dict[str, Any] = {"type": "resumed", "request_id": rid, "threads": results}
        if forbidden:
            frame["forbidden"] = forbidden
        conn.send_frame(frame, in_order=True)

    async def on_cancel_agent(self, conn: Connection, msg: dict[str, Any]) -> None:
        rid = msg.get("request_id")
        info = await self._require_run(conn, msg["run_id"], rid)
        await self.bus.send_control({"op": "cancel", "run_id": msg["run_id"], "user_id": conn.user_id})
        conn.send_frame({"type": "cancel_accepted", "request_id": rid, "run_id": msg["run_id"],
                         "previous_status": info.get("status")})

    async def on_respond(self, conn: Connection, msg: dict[str, Any]) -> None:
        rid = msg.get("request_id")
        await self._require_run(conn, msg["run_id"], rid)
        await self.bus.send_control({"op": "respond", "run_id": msg["run_id"], "approval_id": msg["approval_id"],
                                     "approved": msg["approved"], "comment": msg.get("comment"),
                                     "user_id": conn.user_id})
        conn.send_frame({"type": "respond_accepted", "request_id": rid, "run_id": msg["run_id"],
                         "approval_id": msg["approval_id"]})

    async def on_auth_refresh(self, conn: Connection, msg: dict[str, Any]) -> None:
        rid = msg.get("request_id")
        try:
            claims = self.verify(msg["token"])
            if await self._revoked(claims):
                raise AuthError("token revoked")
        except AuthError as exc:
            raise ProtocolError(ErrorCode.INVALID_TOKEN, exc.reason, rid) from None
        if not may_refresh(conn.claims, claims):
            raise ProtocolError(ErrorCode.FORBIDDEN, "the new token must be for the same user and last longer", rid)
        conn.claims = claims
        conn.send_frame({"type": "auth_refreshed", "request_id": rid, "token_expires_at": claims.exp})

    # -- lifecycle --------------------------------------------------------------------------
    async def run(self) -> None:
        await self.hub.start()
        self.audit.start()
        tls = None
        if self.settings.tls_cert:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(self.settings.tls_cert, self.settings.tls_key or None)
        revocations = asyncio.create_task(self._watch_revocations(), name="revocations")
        ranges = asyncio.create_task(self._flush_audit_ranges(), name="audit-ranges")
        async with serve(self.handler, self.settings.host, self.settings.port, ssl=tls,
                         process_request=self.process_request, select_subprotocol=self.select_subprotocol,
                         create_connection=GatewayConnection,
                         max_size=HARD_MAX_FRAME, ping_interval=self.settings.heartbeat_interval_s,
                         ping_timeout=self.settings.heartbeat_interval_s, close_timeout=2,
                         server_header="agentevents") as server:
            log.info("gateway_listening server_id=%s host=%s port=%d tls=%s", self.settings.server_id,
                     self.settings.host, self.settings.port, bool(tls))
            await self.stopping.wait()
            server.close(close_connections=True)
            await server.wait_closed()
        revocations.cancel()
        ranges.cancel()
        await asyncio.gather(revocations, ranges, return_exceptions=True)
        for conn in list(self.connections.values()):
            conn.flush_ranges()
        await self.hub.stop()
        await self.audit.stop()
        await self.database.close()
        await self.redis.aclose()


async def run_gateway(settings: Settings) -> None:
    gateway = Gateway(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, gateway.stopping.set)
    await gateway.run()


__all__ = ["Gateway", "run_gateway", "Headers"]
