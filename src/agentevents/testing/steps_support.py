"""What many step modules do, once: how long a run may take, asking and waiting for the answer,
connecting with a given token, reconnecting and resuming, answering an agent's approval request,
and checking a frame against the published schemas. Waiting for a run's end is
``World.finished``; polling a condition with a deadline is ``testing.polling``.

Every helper that fails raises an AssertionError that shows what the connection received.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from jsonschema import ValidationError

from ..protocol.schemas import validate_server_frame
from .client import Frame, HandshakeRefused, RecordingClient
from .world import RUN_TIMEOUT_S, Run, World

__all__ = ["RUN_TIMEOUT_S", "SLOW_RUN_TIMEOUT_S", "FAULT_RUN_TIMEOUT_S", "APPROVAL_TIMEOUT_S", "ask_and_wait",
           "start_at_once", "runs_ended", "quiet_each", "established", "handshake", "last_seqs", "resume",
           "reconnect_and_resume", "approval_request", "approval_id", "answer_approval", "schema_error"]

# How long a run may take from its start to its agent_completed: RUN_TIMEOUT_S (testing.world), and longer
SLOW_RUN_TIMEOUT_S = 30.0  # behind a lossy proxy, a flood, a token refresh or a security filter
FAULT_RUN_TIMEOUT_S = 40.0  # while a component of the backend fails and comes back
APPROVAL_TIMEOUT_S = 10.0  # from a run's start to its approval_required


# -- starting runs, and their end ------------------------------------------------------------------

async def ask_and_wait(world: World, name: str, agent: str, message: str, *,
                       client: RecordingClient | None = None) -> Run:
    """Start a run (on ``client``, by default the person's latest connection) and wait for its end."""
    run = await world.start(name, agent, message, client=client)
    await run.client.wait_run_end(run.run_id, RUN_TIMEOUT_S)
    return run


async def start_at_once(world: World, starts: Iterable[tuple[str, str, str]]) -> list[Run]:
    """Start these runs (person, agent, message) at the same moment; each must be accepted."""
    return list(await asyncio.gather(*(world.start(name, agent, message) for name, agent, message in starts)))


async def runs_ended(runs: Iterable[Run], timeout_s: float = RUN_TIMEOUT_S) -> list[Frame]:
    """Each run's agent_completed (on the connection that started it), waited for together: every
    run ends within ``timeout_s`` from now. One run: ``World.finished``."""
    return list(await asyncio.gather(*(r.client.wait_run_end(r.run_id, timeout_s) for r in runs)))


async def quiet_each(world: World, names: Iterable[str]) -> None:
    """The defined end (``World.quiet``) on every connection of these people, one after another."""
    for name in names:
        for client in world.person(name).clients:
            await world.quiet([client])


# -- connections ----------------------------------------------------------------------------------

def established(client: RecordingClient) -> Frame:
    """The connection_established the connection was greeted with."""
    for frame in client.frames:
        if frame.type == "connection_established":
            return frame
    raise AssertionError(f"{client.name} has no connection_established\n{client.describe()}")


async def handshake(world: World, token: str | None, name: str) -> int | RecordingClient:
    """Try to connect with this token (or none), as no person of the scenario: the HTTP status the
    handshake was refused with, or the open connection (closed with the world)."""
    client = RecordingClient(world.target.ws_url, token, name=name)
    try:
        await client.connect()
    except HandshakeRefused as refused:
        return refused.status
    world.closers.append(client.close)
    return client


# -- reconnect and resume -------------------------------------------------------------------------

def last_seqs(world: World, name: str) -> dict[str, int]:
    """For each thread the person started a run in: the highest seq any of her connections received."""
    threads = {r.thread_id for r in world.runs_of(name)}
    return {t: max((f.data["seq"] for f in world.events_of(name, thread_id=t)), default=0) for t in threads}


async def resume(client: RecordingClient, threads: dict[str, int]) -> Frame:
    """Ask to catch up on ``threads`` (thread_id -> last seq seen); the ``resumed`` answer."""
    answer = await client.request({"type": "resume", "threads": threads})
    if answer.type != "resumed":
        raise AssertionError(f"resume refused: {answer.raw}\n{client.describe()}")
    return answer


async def reconnect_and_resume(world: World, name: str, threads: dict[str, int] | None = None, *,
                               url: str | None = None) -> RecordingClient:
    """A new connection for the person (through ``url`` if given) that resumes ``threads``, by
    default every thread she ran in from the last seq she received; the new connection."""
    threads = last_seqs(world, name) if threads is None else threads
    client = await world.connect(name, url=url)
    await resume(client, threads)
    return client


# -- approvals ------------------------------------------------------------------------------------

async def approval_request(run: Run, what: str = "approval_required",
                           timeout_s: float = APPROVAL_TIMEOUT_S) -> Frame:
    """The run's approval_required, on the connection that started it."""
    return await run.client.wait_for(lambda f: f.type == "approval_required" and f.data.get("run_id") == run.run_id,
                                     timeout_s, what)


def approval_id(asked: Frame) -> str:
    return asked.data["data"]["approval_id"]


async def answer_approval(run: Run, approved: bool, problem: str = "the answer to the approval was refused",
                          what: str = "approval_required") -> tuple[Frame, Frame]:
    """Wait for the run's approval request and answer it: (the request, the respond_accepted).
    Fails with ``problem``, the answer and the frames received if the answer is refused."""
    asked = await approval_request(run, what)
    answer = await run.client.request({"type": "respond", "run_id": run.run_id,
                                       "approval_id": approval_id(asked), "approved": approved})
    if answer.type != "respond_accepted":
        raise AssertionError(f"{problem}: {answer.raw}\n{run.client.describe()}")
    return asked, answer


# -- the published schemas ------------------------------------------------------------------------

def schema_error(frame: Frame) -> str | None:
    """Why the frame does not match the published schema of its type, or None when it does."""
    try:
        validate_server_frame(frame.data)
    except ValidationError as exc:
        return exc.message
    return None
