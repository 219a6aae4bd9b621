"""The control interface: the suite's one door into a backend besides the wire protocol.

Scenarios that break a component, read a gateway's counts, query the event archive or the
delivery audit, revoke a token or ask which worker runs a run go through :class:`Control`, never
through a backend's stores, keys or process table. Each method belongs to one capability of
docs/conformance.md (``fault_control``, ``process_stats``, ``archive_query``, ``audit_query``,
``token_revocation``); an implementation says which it offers with :meth:`Control.provides`, and
every method of a capability it does not offer raises :class:`ControlUnavailable` naming it.

- :class:`NativeControl`: the native stack of this repository (supervisord, PostgreSQL, Redis,
  the gateways' /health and processes). The only place in ``agentevents.testing`` that reads
  them.
- :class:`DockerControl`: the compose topology; faults through ``docker_stack``.
- :class:`HttpControl`: any backend's control endpoint (docs/conformance.md §7), named by the
  profile's ``[control]`` table.
- :class:`NoControl`: a backend reached through the protocol alone.

:func:`control_for` picks one for a target. Every method is a coroutine; lifecycle code that is
not on an event loop runs one with :func:`blocking`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import jwt
import orjson

from ..protocol.conformance import CONFORMANCE_VERSION
from .profile import CONTROL_CAPABILITIES

if TYPE_CHECKING:
    from .profile import Profile

T = TypeVar("T")

FAULT_ACTIONS = ("kill", "stop", "start", "restart", "pause", "resume")
AUDIT_BATCH = 10_000  # event ids per audit search (docs/conformance.md §7.7)
HTTP_TIMEOUT_S = 70.0  # the endpoint answers every action within 60 s
DOCKER_REDIS_URL = "redis://127.0.0.1:6381/0"  # the compose file publishes the bus on loopback


class ControlUnavailable(Exception):
    """The target's control interface does not offer a capability a step needs."""

    def __init__(self, capability: str, what: str, implementation: str) -> None:
        super().__init__(f"{implementation} cannot {what}: the target does not provide {capability}")
        self.capability = capability


class ControlError(Exception):
    """A control request that was made and failed: one line with what was asked and the answer."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "action_failed",
                 details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.details = dict(details or {})


class StoreUnavailable(ControlError):
    """The store an answer comes from (the archive, the audit) is down now; asking again may work."""


@dataclass(frozen=True)
class GatewayStats:
    """What one gateway holds now (docs/conformance.md §7.5)."""

    name: str
    ws_url: str  # reaches this gateway only, past the load balancer
    connections: int
    threads: int  # conversations it follows for its connections
    open_fds: int
    rss_bytes: int

    @property
    def rss_mb(self) -> float:
        return self.rss_bytes / 2**20

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GatewayStats:
        try:
            return cls(str(data["name"]), str(data["ws_url"]), int(data["connections"]), int(data["threads"]),
                       int(data["open_fds"]), int(data["rss_bytes"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ControlError(f"a gateway's statistics lack or garble {exc}: {dict(data)}") from None


def jti_of(token_or_jti: str) -> str:
    """The ``jti`` a token is revoked by: read from a JWT (unverified), or the value itself."""
    if token_or_jti.count(".") != 2:
        return token_or_jti
    jti = jwt.decode(token_or_jti, options={"verify_signature": False}).get("jti")
    if not jti:
        raise ValueError("the token has no jti claim to revoke it by")
    return str(jti)


def blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run a control coroutine from synchronous code (start-up, hooks), on a loop of its own in a
    helper thread, so that the caller's event loop, if there is one, is left as it was."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _check_action(action: str) -> None:
    if action not in FAULT_ACTIONS:
        raise ValueError(f"unknown action {action!r}; one of {', '.join(FAULT_ACTIONS)}")


class Control:
    """The interface. This base offers nothing: each method raises ControlUnavailable with its
    capability, and implementations override the methods of the capabilities they provide."""

    description = "this target"

    def provides(self) -> frozenset[str]:
        """The control capabilities (``profile.CONTROL_CAPABILITIES``) this implementation offers."""
        return frozenset()

    def _unavailable(self, capability: str, what: str) -> ControlUnavailable:
        return ControlUnavailable(capability, what, self.description)

    async def check(self, profile: Profile) -> None:
        """Before any scenario: the control side answers and offers what the profile declares."""

    # -- fault_control --------------------------------------------------------------------------

    async def fault(self, action: str, component: str) -> None:
        """``kill``, ``stop``, ``start``, ``restart``, ``pause`` or ``resume`` one component; returns
        when it is done (docs/conformance.md §7.4)."""
        raise self._unavailable("fault_control", f"{action} {component}")

    async def crash(self, component: str) -> None:
        """Kill a component and keep it down (a real outage) until :meth:`release_restarts`."""
        raise self._unavailable("fault_control", f"crash {component}")

    async def release_restarts(self) -> None:
        """Let what :meth:`crash` kept down restart, as after any crash."""
        raise self._unavailable("fault_control", "release restarts")

    async def heal(self) -> None:
        """After a fault scenario: every component running and healthy again."""
        raise self._unavailable("fault_control", "heal the backend")

    async def answers(self, component: str) -> bool:
        """Whether a component answers now (it may also raise while it does not, saying why)."""
        raise self._unavailable("fault_control", f"tell whether {component} answers")

    async def worker_of_run(self, run_id: str) -> str | None:
        """The component name of the worker running a run (None while it is queued)."""
        raise self._unavailable("fault_control", "tell which worker runs a run")

    # -- process_stats --------------------------------------------------------------------------

    async def gateways(self) -> list[str]:
        """Every gateway's name (its ``server_id``)."""
        raise self._unavailable("process_stats", "list the gateways")

    async def gateway_stats(self, gateway: str | None = None) -> dict[str, GatewayStats]:
        """What every gateway (or one) holds now, by name."""
        raise self._unavailable("process_stats", "read the gateways' statistics")

    # -- archive_query --------------------------------------------------------------------------

    async def archived_events(self, thread_id: str, *, run_id: str | None = None,
                              since_seq: int = 0) -> list[dict[str, Any]]:
        """What the durable archive holds of a conversation, in seq order: ``seq``, ``event_id``,
        ``run_id``, ``user_id``, ``type``, ``payload`` (the exact JSON text delivered) and
        ``archived_at``. Raises StoreUnavailable while the archive is down."""
        raise self._unavailable("archive_query", "read the event archive")

    # -- audit_query ----------------------------------------------------------------------------

    async def audit_rows(self, event_ids: Sequence[str], *,
                         connection_id: str | None = None) -> list[dict[str, Any]]:
        """One row per delivery of these events (to one connection, if given): ``event_id``,
        ``thread_id``, ``seq``, ``user_id``, ``connection_id``, ``server_id``, ``delivered_at``."""
        raise self._unavailable("audit_query", "read the delivery audit")

    # -- token_revocation -----------------------------------------------------------------------

    async def revoke_token(self, token_or_jti: str, *, ttl_s: int = 3600) -> None:
        """Revoke one token (a JWT or its ``jti``) for ``ttl_s`` seconds."""
        raise self._unavailable("token_revocation", "revoke a token")


class NoControl(Control):
    """A backend reached through the protocol alone: every control capability is absent."""

    description = "a target without a control interface"


def _redis_client(url: str, **options: Any):
    import redis.asyncio as aioredis
    return aioredis.from_url(url, **options)


async def _redis_pings(url: str) -> bool:
    redis = _redis_client(url, socket_connect_timeout=1)
    try:
        return bool(await redis.ping())
    finally:
        await redis.aclose()


async def _worker_in_bus(url: str, run_id: str) -> str | None:
    """The reference's record of a run's worker: the ``worker`` field (``worker-<component>``) of
    its hash in Redis (``bus.run_key``)."""
    from ..bus import run_key
    redis = _redis_client(url)
    try:
        raw = (await redis.hget(run_key(run_id), "worker") or b"").decode()
    finally:
        await redis.aclose()
    if not raw:
        return None
    if not raw.startswith("worker-"):
        raise ControlError(f"run {run_id} names its worker {raw!r}, not worker-<component>")
    return raw.removeprefix("worker-")


def _native():
    from ..stack import native
    return native


def _on_stack(fn: Callable[..., T], *args: Any) -> T:
    """Call into the native stack; its one-line reasons (SystemExit) become a ControlError."""
    try:
        return fn(*args)
    except SystemExit as exc:
        raise ControlError(str(exc)) from None


class NativeControl(Control):
    """The native stack: components through its supervisor, gateway counts from each gateway's
    /health and process, the archive and audit from PostgreSQL, runs and revocations in Redis."""

    description = "the native stack"

    def __init__(self, database_url: str | None = None, redis_url: str | None = None) -> None:
        self._database_url = database_url  # read from the stack when first needed
        self._redis_url = redis_url

    def provides(self) -> frozenset[str]:
        return frozenset(CONTROL_CAPABILITIES)

    @property
    def database_url(self) -> str:
        if self._database_url is None:
            self._database_url = _native().stack_env()["AE_DATABASE_URL"]
        return self._database_url

    @property
    def redis_url(self) -> str:
        if self._redis_url is None:
            self._redis_url = _native().stack_env()["AE_REDIS_URL"]
        return self._redis_url

    # -- fault_control --------------------------------------------------------------------------

    async def fault(self, action: str, component: str) -> None:
        _check_action(action)

        def act() -> None:
            # pause/resume act on the whole process tree: a PostgreSQL backend answers otherwise.
            if _on_stack(_native().control, action, component) != 0:
                raise ControlError(f"stack {action} {component} failed")

        await asyncio.to_thread(act)

    async def crash(self, component: str) -> None:
        await asyncio.to_thread(_on_stack, _native().crash, component)

    async def release_restarts(self) -> None:
        await asyncio.to_thread(_native().release_restarts)

    async def heal(self) -> None:
        def heal() -> None:
            native = _native()
            native.release_restarts()
            for component in native.INFRA:  # a paused (SIGSTOPped) process is "running" to supervisord
                try:
                    native.control("resume", component)
                except (SystemExit, OSError):
                    pass  # not running: up() below starts it
            if not all(native.health().values()):
                native.up()

        await asyncio.to_thread(_on_stack, heal)

    async def answers(self, component: str) -> bool:
        if component == "postgres":
            import asyncpg
            conn = await asyncpg.connect(self.database_url, timeout=2)
            try:
                return await conn.fetchval("SELECT 1") == 1
            finally:
                await conn.close()
        if component == "redis":
            return await _redis_pings(self.redis_url)
        report = await asyncio.to_thread(_native().health)
        if component not in report:
            raise ControlError(f"no component named {component!r}; one of {', '.join(report)}")
        return report[component]

    async def worker_of_run(self, run_id: str) -> str | None:
        return await _worker_in_bus(self.redis_url, run_id)

    # -- process_stats --------------------------------------------------------------------------

    async def gateways(self) -> list[str]:
        return list(_native().GATEWAYS)

    async def gateway_stats(self, gateway: str | None = None) -> dict[str, GatewayStats]:
        names = [gateway] if gateway is not None else await self.gateways()
        return {name: await asyncio.to_thread(self._stats_of, name) for name in names}

    @staticmethod
    def _stats_of(gateway: str) -> GatewayStats:
        import psutil
        native = _native()
        if gateway not in native.GATEWAYS:
            raise ControlError(f"no gateway named {gateway!r}; one of {', '.join(native.GATEWAYS)}")
        port = native.GATEWAYS[gateway]
        with urllib.request.urlopen(f"http://{native.HOST}:{port}/health", timeout=2) as resp:
            health = orjson.loads(resp.read())
        process = psutil.Process(_on_stack(native.component_pid, gateway))
        return GatewayStats(gateway, f"ws://{native.HOST}:{port}/ws", int(health["connections"]),
                            int(health["threads"]), process.num_fds(), process.memory_info().rss)

    # -- archive_query and audit_query ----------------------------------------------------------

    async def _fetch(self, query: str, *args: Any) -> list[dict[str, Any]]:
        """One query on a connection of its own (the database may have been killed or paused
        since the last), each part bounded; a database that does not answer is StoreUnavailable."""
        import asyncpg
        try:
            conn = await asyncpg.connect(self.database_url, timeout=5)
            try:
                rows = await conn.fetch(query, *args, timeout=5)
            finally:
                await conn.close(timeout=5)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            raise StoreUnavailable(f"the native stack's PostgreSQL did not answer: {exc!r}", status=503,
                                   code="unavailable") from None
        return [dict(r) for r in rows]

    async def archived_events(self, thread_id: str, *, run_id: str | None = None,
                              since_seq: int = 0) -> list[dict[str, Any]]:
        rows = await self._fetch("SELECT seq, event_id, run_id, user_id, type, payload, created_at FROM events "
                                 "WHERE thread_id = $1 AND ($2::text IS NULL OR run_id = $2) AND seq > $3 "
                                 "ORDER BY seq", thread_id, run_id, since_seq)
        for row in rows:
            row["archived_at"] = row.pop("created_at").isoformat()
        return rows

    async def audit_rows(self, event_ids: Sequence[str], *,
                         connection_id: str | None = None) -> list[dict[str, Any]]:
        # Each event (by its archived thread and seq) within the delivery ranges that hold it.
        rows = await self._fetch(
            "SELECT e.event_id, e.thread_id, e.seq, r.user_id, r.connection_id, r.server_id, "
            "r.first_at, r.last_at FROM events e JOIN delivery_ranges r ON r.thread_id = e.thread_id "
            "AND e.seq BETWEEN r.first_seq AND r.last_seq WHERE e.event_id = ANY($1::text[]) "
            "AND ($2::text IS NULL OR r.connection_id = $2) ORDER BY r.id, e.seq",
            list(event_ids), connection_id)
        for row in rows:
            first, last = row.pop("first_at"), row.pop("last_at")
            row["delivered_at"] = last.isoformat()
            row["delivered_between"] = [first.isoformat(), last.isoformat()]
        return rows

    # -- token_revocation -----------------------------------------------------------------------

    async def revoke_token(self, token_or_jti: str, *, ttl_s: int = 3600) -> None:
        from .. import revocation
        redis = _redis_client(self.redis_url)
        try:
            await revocation.revoke(redis, jti=jti_of(token_or_jti), ttl_s=ttl_s)
        finally:
            await redis.aclose()


class DockerControl(Control):
    """The compose topology: components through the Docker SDK (``docker_stack``), a run's worker
    from the bus the compose file publishes on loopback. Nothing else is visible from outside."""

    description = "the docker stack"

    def __init__(self, redis_url: str = DOCKER_REDIS_URL) -> None:
        self.redis_url = redis_url

    def provides(self) -> frozenset[str]:
        return frozenset({"fault_control"})

    async def fault(self, action: str, component: str) -> None:
        from . import docker_stack
        _check_action(action)
        await asyncio.to_thread(docker_stack.control, action, component)

    async def crash(self, component: str) -> None:
        await self.fault("kill", component)  # its restart policy decides when it comes back

    async def release_restarts(self) -> None:
        """Nothing is held: Docker's restart policy restarts a killed container by itself."""

    async def heal(self) -> None:
        from . import docker_stack
        await asyncio.to_thread(docker_stack.up)

    async def answers(self, component: str) -> bool:
        if component == "redis":
            return await _redis_pings(self.redis_url)
        from . import docker_stack
        return await asyncio.to_thread(docker_stack.answers, component)

    async def worker_of_run(self, run_id: str) -> str | None:
        return await _worker_in_bus(self.redis_url, run_id)


class HttpControl(Control):
    """A client of a backend's control endpoint (docs/conformance.md §7): JSON over HTTP on
    loopback, every request with ``Authorization: Bearer <secret>``. Any error answer becomes a
    ControlError (StoreUnavailable for ``503``) naming the request, the status and the reason."""

    def __init__(self, url: str, secret: str, *, timeout_s: float = HTTP_TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self.secret = secret
        self.timeout_s = timeout_s
        self.description = f"the control endpoint {self.url}"
        self._kept_down: list[str] = []  # crashed with keep_down, until release_restarts

    def provides(self) -> frozenset[str]:
        return frozenset(CONTROL_CAPABILITIES)

    def _send(self, method: str, path: str, body: Mapping[str, Any] | None) -> Any:
        data = orjson.dumps(body) if body is not None else None
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers={
            "Authorization": f"Bearer {self.secret}", "Accept": "application/json",
            **({"Content-Type": "application/json"} if data is not None else {})})
        what = f"{method} {self.url}{path}"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise self._error(what, exc.code, exc.read()) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ControlError(f"{what}: no answer from the control endpoint ({reason})",
                               code="unreachable") from None
        try:
            return orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            raise ControlError(f"{what}: the answer is not JSON: {raw[:200]!r}", code="bad_answer") from None

    @staticmethod
    def _error(what: str, status: int, raw: bytes) -> ControlError:
        try:
            error = orjson.loads(raw)["error"]
            code, message, details = str(error["code"]), str(error["message"]), error.get("details") or {}
        except (orjson.JSONDecodeError, KeyError, TypeError):
            code, message, details = "http_error", raw[:200].decode(errors="replace") or "(no body)", {}
        kind = StoreUnavailable if status == 503 else ControlError
        return kind(f"{what}: HTTP {status} {code}: {message}", status=status, code=code, details=details)

    async def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None, *,
                    key: str | None = None) -> Any:
        """One request; with ``key``, that member of the answer (its absence is a ControlError)."""
        answer = await asyncio.to_thread(self._send, method, path, body)
        if key is None:
            return answer
        if not isinstance(answer, dict) or key not in answer:
            raise ControlError(f"{method} {self.url}{path}: the answer has no {key!r}: {str(answer)[:200]}",
                               code="bad_answer")
        return answer[key]

    @staticmethod
    def _segment(value: str) -> str:
        return urllib.parse.quote(value, safe="")

    async def check(self, profile: Profile) -> None:
        if not self.secret:
            raise ControlError(f"{profile.path or profile.name}: [control] secret is empty (is the variable its "
                               "env: names set?)", code="mismatch")
        found = await self._call("GET", "/v1")
        version = str(found.get("conformance_version", ""))
        if version != CONFORMANCE_VERSION:
            raise ControlError(f"{self.description} speaks conformance_version {version!r}; the profile "
                               f"{CONFORMANCE_VERSION!r}", code="mismatch")
        offered = set(found.get("capabilities") or [])
        lacking = sorted((profile.capabilities & set(CONTROL_CAPABILITIES)) - offered)
        if lacking:
            raise ControlError(f"the profile declares {', '.join(lacking)} but {self.description} offers only "
                               f"{', '.join(sorted(offered)) or 'nothing'}", code="mismatch")

    # -- fault_control --------------------------------------------------------------------------

    async def fault(self, action: str, component: str) -> None:
        _check_action(action)
        await self._call("POST", f"/v1/components/{self._segment(component)}/{action}", {})

    async def crash(self, component: str) -> None:
        await self._call("POST", f"/v1/components/{self._segment(component)}/kill", {"keep_down": True})
        self._kept_down.append(component)

    async def release_restarts(self) -> None:
        while self._kept_down:
            await self.fault("start", self._kept_down[0])
            self._kept_down.pop(0)

    async def heal(self) -> None:
        await self._call("POST", "/v1/heal", {})
        self._kept_down.clear()

    async def answers(self, component: str) -> bool:
        states = {c["name"]: c["state"] for c in await self._call("GET", "/v1/components", key="components")}
        if component not in states:
            raise ControlError(f"{self.description} lists no component {component!r}: {', '.join(states)}",
                               code="unknown_component")
        return states[component] == "running"

    async def worker_of_run(self, run_id: str) -> str | None:
        worker = await self._call("GET", f"/v1/runs/{self._segment(run_id)}", key="worker")
        return str(worker) if worker else None

    # -- process_stats --------------------------------------------------------------------------

    async def gateways(self) -> list[str]:
        return [str(g["name"]) for g in await self._call("GET", "/v1/gateways", key="gateways")]

    async def gateway_stats(self, gateway: str | None = None) -> dict[str, GatewayStats]:
        if gateway is not None:
            one = GatewayStats.from_json(await self._call("GET", f"/v1/gateways/{self._segment(gateway)}"))
            return {one.name: one}
        listed = await self._call("GET", "/v1/gateways", key="gateways")
        return {s.name: s for s in map(GatewayStats.from_json, listed)}

    # -- archive_query and audit_query ----------------------------------------------------------

    async def archived_events(self, thread_id: str, *, run_id: str | None = None,
                              since_seq: int = 0) -> list[dict[str, Any]]:
        query = {k: v for k, v in (("run_id", run_id), ("since_seq", since_seq)) if v}
        path = f"/v1/threads/{self._segment(thread_id)}/events"
        return list(await self._call("GET", path + (f"?{urllib.parse.urlencode(query)}" if query else ""),
                                     key="events"))

    async def audit_rows(self, event_ids: Sequence[str], *,
                         connection_id: str | None = None) -> list[dict[str, Any]]:
        ids, rows = list(event_ids), []
        for start in range(0, len(ids), AUDIT_BATCH):
            body: dict[str, Any] = {"event_ids": ids[start:start + AUDIT_BATCH]}
            if connection_id is not None:
                body["connection_id"] = connection_id
            rows += await self._call("POST", "/v1/deliveries/search", body, key="deliveries")
        return rows

    # -- token_revocation -----------------------------------------------------------------------

    async def revoke_token(self, token_or_jti: str, *, ttl_s: int = 3600) -> None:
        await self._call("POST", "/v1/revocations", {"jti": jti_of(token_or_jti), "ttl_s": ttl_s})


def control_for(mode: str, profile: Profile) -> Control:
    """The control a target gets: the native or docker stack's own; else the profile's control
    endpoint, if it names one; else none."""
    if mode == "native":
        return NativeControl()
    if mode == "docker":
        return DockerControl()
    if profile.control_url:
        return HttpControl(profile.control_url, profile.control_secret)
    return NoControl()
