"""The one envelope every server event has, and the event types.

``seq`` is not set here: it is assigned atomically by the bus when the event is appended to its
thread's stream (see ``agentevents.bus``), so it is gapless per thread across runs.
"""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime
from typing import Any

import orjson

AGENT_STARTED = "agent_started"
AGENT_THINKING = "agent_thinking"
TOOL_EXECUTING = "tool_executing"
TOOL_COMPLETED = "tool_completed"
AGENT_COMPLETED = "agent_completed"
# Not one of the five, same envelope:
AGENT_ERROR = "agent_error"              # an error during a run (the run may recover)
TOOL_PROGRESS = "tool_progress"          # incremental output of a running tool
APPROVAL_REQUIRED = "approval_required"  # the agent waits for the user's ``respond``

CORE_EVENT_TYPES = (AGENT_STARTED, AGENT_THINKING, TOOL_EXECUTING, TOOL_COMPLETED, AGENT_COMPLETED)
EVENT_TYPES = frozenset(CORE_EVENT_TYPES + (AGENT_ERROR, TOOL_PROGRESS, APPROVAL_REQUIRED))

COMPLETION_STATUSES = frozenset({"completed", "partial", "failed", "timeout", "cancelled", "degraded"})
TOOL_STATUSES = frozenset({"success", "error", "timeout", "permission_denied", "invalid_parameters",
                           "rate_limited", "rolled_back"})

ENVELOPE_FIELDS = ("type", "event_id", "seq", "thread_id", "run_id", "user_id", "agent_name",
                   "timestamp", "data")


_SECOND = "%Y-%m-%dT%H:%M:%S."  # up to the milliseconds
_second: list[Any] = [None, ""]  # the last whole second formatted, and its text up to the dot


def utc_timestamp(now: datetime | None = None) -> str:
    """RFC 3339, UTC, millisecond precision: ``2026-11-25T14:52:36.123Z``. The current time's
    date and time of day are formatted once a second (every event carries one)."""
    if now is not None:
        now = now.astimezone(UTC)
        return now.strftime(_SECOND) + f"{now.microsecond // 1000:03d}Z"
    ns = time.time_ns()
    second, ms = divmod(ns // 1_000_000, 1000)
    if _second[0] != second:
        _second[:] = second, time.strftime(_SECOND, time.gmtime(second))
    return f"{_second[1]}{ms:03d}Z"


def new_id() -> str:
    """32 lowercase hex digits of 128 random bits (as uuid4().hex, without building a UUID)."""
    return os.urandom(16).hex()


def new_event_id() -> str:
    """32 lowercase hex digits: the Unix time in milliseconds (12 digits), then 80 random bits.
    Ids made later sort later (to the millisecond), so the archive's unique index on ``event_id``
    takes new entries at its end: with random ids every insert lands on a random page of it, and
    once the index outgrows PostgreSQL's buffers each one costs a page read and a page write."""
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"


def build_event(event_type: str, *, thread_id: str, run_id: str, user_id: str, agent_name: str,
                data: dict[str, Any], event_id: str | None = None,
                now: datetime | None = None) -> dict[str, Any]:
    """An event without ``seq``; the bus adds it. Raises ValueError for an unknown type."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    if event_type == AGENT_COMPLETED and data.get("status") not in COMPLETION_STATUSES:
        raise ValueError(f"agent_completed status must be one of {sorted(COMPLETION_STATUSES)}")
    return {
        "type": event_type,
        "event_id": event_id or new_event_id(),
        "thread_id": thread_id,
        "run_id": run_id,
        "user_id": user_id,
        "agent_name": agent_name,
        "timestamp": utc_timestamp(now),
        "data": data,
    }


def splice_seq(body: bytes, seq: int) -> bytes:
    """Put ``seq`` first into a serialized event object (mirrors the bus's Lua script)."""
    if not body.startswith(b"{"):
        raise ValueError("event body must be a JSON object")
    rest = body[1:]
    sep = b"," if rest.strip() != b"}" else b""
    return b'{"seq":' + str(seq).encode() + sep + rest


# How every published event begins: the bus puts seq first, build_event gives type and event_id next.
_HEAD = re.compile(rb'\{"seq":(\d{1,19}),"type":"[a-z_]{1,64}","event_id":"([^"\\]{1,128})"')


def peek_head(payload: bytes) -> tuple[int, str]:
    """(seq, event_id) of a published event without parsing all of it; any other shape is parsed."""
    found = _HEAD.match(payload)
    if found is not None:
        return int(found.group(1)), found.group(2).decode()
    head = orjson.loads(payload)
    return head["seq"], head["event_id"]
