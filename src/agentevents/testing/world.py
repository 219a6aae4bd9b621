"""The world a scenario or test runs in: the stack under test and the people in the scenario.

``StackTarget`` says where the backend is (native stack, or any external backend speaking the
protocol) and holds its ``control`` (``testing.control``): the one way, besides the protocol, to
break and heal components and to read what the backend keeps. ``World`` gives each
scenario fresh users (unique ids), their connected clients, and closes every socket after.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .client import Frame, RecordingClient
from .control import Control, ControlError, DockerControl, blocking, control_for
from .netem import TcpProxy
from .profile import CONTROL_CAPABILITIES, Limits, Profile, ProfileError, load_profile
from .tokens import TokenFactory

RUN_TIMEOUT_S = 20.0  # how long a run may take from its start to its agent_completed
QUIET_GRACE_S = 0.3  # after a barrier: how long an event still crossing the bus may take to arrive
TARGETS = Path("features/targets")  # the profiles, relative to where the suite runs
DEFAULT_PROFILE = {"native": "native", "docker": "docker", "external": "native"}


class TargetError(Exception):
    """The backend under test is misconfigured or out of reach: one line for the user."""

    def __init__(self, message: str, *, usage: bool = True) -> None:
        super().__init__(message)
        self.usage = usage  # a mistake in what was asked for (exit 2), not a broken backend


@dataclass
class StackTarget:
    """The backend under test: its profile (``testing.profile``) with the URLs and key filled in,
    its control (chosen by mode unless given: ``control.control_for``) and, for the stacks the
    suite runs itself, how to start and stop them."""

    mode: str
    ws_url: str
    jwt_secret: str
    started_here: bool = False
    profile: Profile = field(default_factory=lambda: Profile("external"))
    wss_url: str = ""
    tls_ca: str = ""
    # Where the suite serves the HTTP service an http_api call may reach ("" = any free port).
    callback_url: str = ""
    control: Control = field(default=None, repr=False)  # type: ignore[assignment]  # set in __post_init__

    def __post_init__(self) -> None:
        if self.control is None:
            self.control = control_for(self.mode, self.profile)

    @property
    def capabilities(self) -> frozenset[str]:
        """What the profile declares, less what this target cannot provide here: control
        capabilities need a control that provides them (``Control.provides``), ``tls`` a wss URL."""
        absent = set(CONTROL_CAPABILITIES) - self.control.provides()
        if not (self.wss_url and self.tls_ca):
            absent.add("tls")
        return frozenset(self.profile.capabilities - absent)

    @property
    def limits(self) -> Limits:
        return self.profile.limits

    @classmethod
    def from_userdata(cls, userdata: dict[str, str]) -> StackTarget:
        """The target of behave's ``-D`` values: ``-D target=PROFILE.toml`` (default: the profile
        of ``-D stack``, or of AE_STACK, or native), single values overridden by ``-D``. A
        TargetError names what is missing."""
        mode = userdata.get("stack") or os.environ.get("AE_STACK", "")
        path = userdata.get("target") or TARGETS / f"{DEFAULT_PROFILE.get(mode or 'native', 'native')}.toml"
        try:
            profile = load_profile(path).with_overrides({**userdata, "stack": mode})
        except ProfileError as exc:
            raise TargetError(str(exc)) from None
        mode = profile.stack
        if mode == "native":
            from ..stack import native
            env = native.stack_env()
            return cls(mode, profile.ws_url or env["AE_WS_URL"], profile.tokens.secret or env["AE_JWT_SECRET"],
                       profile=profile, wss_url=profile.wss_url or env["AE_WSS_URL"],
                       tls_ca=profile.tls_ca or env["AE_TLS_CA"],
                       callback_url=profile.callback_url or native.callback_url())
        if mode == "serve":
            from . import serve_stack
            profile = dataclasses.replace(profile, tokens=serve_stack.token_spec(profile))
            return cls(mode, profile.ws_url or serve_stack.ws_url(), profile.tokens.secret, profile=profile,
                       wss_url=profile.wss_url, tls_ca=profile.tls_ca,
                       callback_url=profile.callback_url or serve_stack.callback_url())
        where = f"-D stack={mode}" if not userdata.get("target") else profile.path
        needs = [d for d, v in (("ws_url", profile.ws_url), ("jwt_secret", profile.tokens.secret)) if not v]
        if profile.tokens.algorithm.startswith("HS") and needs:
            hint = " (the compose file requires it too)" if mode == "docker" else ""
            raise TargetError(f"{where} needs " + " and ".join(f"-D {k}=..." for k in needs) + hint)
        if not profile.ws_url:
            raise TargetError(f"{where} needs -D ws_url=...")
        if urlsplit(profile.ws_url).scheme not in ("ws", "wss"):
            raise TargetError(f"-D ws_url={profile.ws_url!r} is not a ws:// or wss:// URL")
        if mode == "docker":
            control = DockerControl(userdata["redis_url"]) if userdata.get("redis_url") else DockerControl()
            return cls(mode, profile.ws_url, profile.tokens.secret, profile=profile, wss_url=profile.wss_url,
                       tls_ca=profile.tls_ca, callback_url=profile.callback_url, control=control)
        return cls(mode, profile.ws_url, profile.tokens.secret, profile=profile, wss_url=profile.wss_url,
                   tls_ca=profile.tls_ca, callback_url=profile.callback_url)

    def start(self) -> None:
        """Make sure the backend is there: start a native stack that is not up (and stop it again
        at the end), or check once that an external one answers."""
        if self.mode == "docker":
            from . import docker_stack
            self.started_here = docker_stack.up()
            return
        if self.mode == "serve":
            from . import serve_stack
            try:
                self._serve = serve_stack.up(self.profile)
            except (SystemExit, OSError, subprocess.CalledProcessError) as exc:
                raise TargetError(f"agentevents serve did not start: {exc}", usage=False) from None
            self.started_here = True
            return
        if self.mode != "native":
            self.check_reachable()
            self.check_control()
            return
        from ..stack import native
        try:
            if not native.supervisor_running(native.Paths(native.stack_dir())):
                native.up()
                self.started_here = True
            elif not all(native.health().values()):
                self.heal()  # running but hurt (a previous run's fault): mend it, it stays someone else's
        except (SystemExit, ControlError) as exc:  # the stack's one-line reasons (busy ports, unhealthy component)
            raise TargetError(f"the native stack did not start: {exc}", usage=False) from None
        except (OSError, subprocess.CalledProcessError) as exc:
            raise TargetError(f"the native stack did not start: {exc}; see {native.stack_dir() / 'logs'}",
                              usage=False) from None

    def check_reachable(self, timeout_s: float = 5.0) -> None:
        """One TCP connection to the WebSocket endpoint, before any scenario runs."""
        parts = urlsplit(self.ws_url)
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        try:
            socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=timeout_s).close()
        except OSError as exc:
            raise TargetError(f"cannot reach {self.ws_url}: {exc.strerror or exc}", usage=False) from None

    def check_control(self) -> None:
        """The control endpoint, if any, answers and offers what the profile declares."""
        try:
            blocking(self.control.check(self.profile))
        except ControlError as exc:
            raise TargetError(str(exc), usage=exc.code == "mismatch") from None

    def stop(self) -> None:
        if self.mode == "serve":
            serve = getattr(self, "_serve", None)
            if serve is not None:
                serve.stop()
            return
        if self.started_here and self.mode == "docker":
            from . import docker_stack
            docker_stack.down()
        elif self.started_here:
            from ..stack import native
            native.down()

    def heal(self) -> None:
        """After a fault scenario (from synchronous hooks): every component running and healthy again."""
        blocking(self.control.heal())

    def tokens(self) -> TokenFactory:
        spec = self.profile.tokens
        key = self.jwt_secret if spec.algorithm.startswith("HS") else spec.signing_key()
        return TokenFactory(key, spec.algorithm, spec.issuer, spec.audience, claims=spec)


@dataclass
class Run:
    """A run a person started: where, when, and on which connection."""

    person: str
    agent: str
    run_id: str
    thread_id: str
    sent_at: float
    client: RecordingClient
    accepted: Frame


@dataclass
class Person:
    name: str
    user_id: str
    permissions: list[str] = field(default_factory=list)
    tier: str = "free"
    preferences: dict[str, Any] = field(default_factory=dict)  # sent with each of her requests
    clients: list[RecordingClient] = field(default_factory=list)
    threads: dict[str, str] = field(default_factory=dict)   # label -> thread_id
    runs: dict[str, str] = field(default_factory=dict)      # label -> run_id

    @property
    def client(self) -> RecordingClient:
        if not self.clients:
            raise AssertionError(f"{self.name} has no connection")
        return self.clients[-1]


class World:
    def __init__(self, target: StackTarget, scenario: str = "") -> None:
        self.target = target
        self.scenario = scenario
        self.tokens = target.tokens()
        self.people: dict[str, Person] = {}
        self.runs: list[Run] = []
        self.notes: dict[str, Any] = {}
        self.figures: list[str] = []  # what the scenario measured (testing.figures.record_figure)
        # Held by every person of the scenario unless given explicitly (@conformance_agent: agents:script).
        self.default_permissions: list[str] = []
        self.closers: list[Any] = []  # async callables run at the end (proxies, servers)

    def person(self, name: str, **kwargs: Any) -> Person:
        if name not in self.people:
            kwargs.setdefault("permissions", list(self.default_permissions))
            self.people[name] = Person(name, TokenFactory.fresh_user(name), **kwargs)
        return self.people[name]

    def token_for(self, person: Person, **overrides: Any) -> str:
        return self.tokens.token(person.user_id, permissions=overrides.pop("permissions", person.permissions),
                                 tier=overrides.pop("tier", person.tier), **overrides)

    async def connect(self, name: str, *, token: str | None = None, via_subprotocol: bool = False,
                      url: str | None = None, **kwargs: Any) -> RecordingClient:
        person = self.person(name)
        client = RecordingClient(url or self.target.ws_url, token or self.token_for(person),
                                 name=f"{name}#{len(person.clients) + 1}", via_subprotocol=via_subprotocol, **kwargs)
        await client.connect()
        person.clients.append(client)
        return client

    async def start(self, name: str, agent: str, message: str, *, thread_id: str | None = None,
                    options: dict[str, Any] | None = None, client: RecordingClient | None = None) -> Run:
        """Start a run and wait for its run_accepted; fails with what was received otherwise."""
        person = self.person(name)
        client = client or person.client
        if person.preferences:
            options = dict(options or {})
            options["preferences"] = {**person.preferences, **options.get("preferences", {})}
        sent = time.monotonic()
        answer = await client.start_agent(agent, message, thread_id=thread_id, options=options)
        if answer.type != "run_accepted":
            raise AssertionError(f"{name}'s {agent} run was not accepted: {answer.raw}")
        run = Run(name, agent, answer.data["run_id"], answer.data["thread_id"], sent, client, answer)
        self.runs.append(run)
        return run

    async def try_start(self, name: str, agent: str, message: str, *,
                        options: dict[str, Any] | None = None) -> Frame:
        """Ask to start a run that may be refused: the answer; an accepted run is kept as a Run."""
        client = self.person(name).client
        sent = time.monotonic()
        answer = await client.start_agent(agent, message, options=options)
        if answer.type == "run_accepted":
            self.runs.append(Run(name, agent, answer.data["run_id"], answer.data["thread_id"], sent, client, answer))
        return answer

    def last_run(self, name: str | None = None) -> Run:
        runs = [r for r in self.runs if name is None or r.person == name]
        if not runs:
            raise AssertionError(f"{name or 'nobody'} has started no run")
        return runs[-1]

    async def finished(self, name: str, run: Run | None = None,
                       timeout_s: float = RUN_TIMEOUT_S) -> tuple[Run, Frame, list[Frame]]:
        """A run (the person's last by default) once its agent_completed arrived: the run, the
        completion frame, and the run's events on the connection that started it."""
        run = run or self.last_run(name)
        end = await run.client.wait_run_end(run.run_id, timeout_s)
        return run, end, run.client.events(run_id=run.run_id)

    def runs_of(self, name: str) -> list[Run]:
        return [r for r in self.runs if r.person == name]

    def frames_of(self, name: str) -> list[Frame]:
        """Every frame any of this person's connections received, in receive order per connection."""
        return [f for c in self.person(name).clients for f in c.frames]

    def events_of(self, name: str, *, run_id: str | None = None, thread_id: str | None = None) -> list[Frame]:
        return [f for c in self.person(name).clients for f in c.events(run_id=run_id, thread_id=thread_id)]

    async def open_link(self, name: str, *, latency_s: float = 0.0,
                        target: tuple[str, int] | None = None) -> TcpProxy:
        """A network link (a TCP proxy on loopback) for this person, closed after the scenario.
        Without a target it leads to the stack's WebSocket endpoint."""
        if target is None:
            parts = urlsplit(self.target.ws_url)
            target = (parts.hostname or "127.0.0.1", parts.port or 80)
        proxy = await TcpProxy(*target, latency_s=latency_s).start()
        self.closers.append(proxy.close)
        self.notes.setdefault("links", {})[name] = proxy
        return proxy

    def link_of(self, name: str) -> TcpProxy:
        proxy = self.notes.get("links", {}).get(name)
        if proxy is None:
            raise AssertionError(f"{name} is not connected through a link of this scenario")
        return proxy

    async def quiet(self, clients: list[RecordingClient] | None = None, grace_s: float | None = None) -> None:
        """The defined end for "nothing else arrives": an in-order barrier on each connection
        (everything the gateway had queued for it is in), then a short grace for events still
        crossing the bus. Without ``clients``: every open connection of the scenario."""
        clients = clients if clients is not None else [
            c for p in self.people.values() for c in p.clients if c.close_code is None]
        await asyncio.gather(*(c.barrier() for c in clients))
        await self.settle(QUIET_GRACE_S if grace_s is None else grace_s)

    @staticmethod
    async def settle(grace_s: float) -> None:
        """The short grace after a defined end (never a wait for something to happen): a stray
        event that was going to arrive would have arrived within it."""
        await asyncio.sleep(grace_s)

    async def close(self) -> None:
        clients = [c for p in self.people.values() for c in p.clients]
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        for closer in reversed(self.closers):
            await closer()
