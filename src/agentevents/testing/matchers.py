"""PyHamcrest matchers for event streams. Each failure message shows the frames received.

They take lists of ``Frame`` (from ``RecordingClient.events``) and read like the requirement:
``assert_that(alice.events(run_id=run), follows_lifecycle())``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from hamcrest.core.base_matcher import BaseMatcher
from hamcrest.core.description import Description

from ..protocol.envelope import (
    AGENT_COMPLETED,
    AGENT_STARTED,
    ENVELOPE_FIELDS,
    TOOL_COMPLETED,
    TOOL_EXECUTING,
)
from .client import Frame, describe

_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class _FrameMatcher(BaseMatcher[Sequence[Frame]]):
    expectation = ""

    def problem(self, frames: Sequence[Frame]) -> str | None:
        raise NotImplementedError

    def _matches(self, item: Sequence[Frame]) -> bool:
        return self.problem(list(item)) is None

    def describe_to(self, description: Description) -> None:
        description.append_text(self.expectation)

    def describe_mismatch(self, item: Sequence[Frame], description: Description) -> None:
        frames = list(item)
        description.append_text(f"{self.problem(frames)}\n{describe(frames)}")


class _Sequence(_FrameMatcher):
    def __init__(self, types: Sequence[str]) -> None:
        self.types = list(types)
        self.expectation = f"events of types exactly {self.types}"

    def problem(self, frames: Sequence[Frame]) -> str | None:
        got = [f.type for f in frames]
        return None if got == self.types else f"got types {got}"


def event_types_exactly(*types: str) -> _FrameMatcher:
    return _Sequence(types)


class _Lifecycle(_FrameMatcher):
    expectation = ("one run's lifecycle: agent_started first, agent_completed last and once, every "
                   "tool_executing closed by one tool_completed with its tool_call_id")

    def __init__(self, require_tools: bool = False) -> None:
        self.require_tools = require_tools

    def problem(self, frames: Sequence[Frame]) -> str | None:
        types = [f.type for f in frames]
        if not types or types[0] != AGENT_STARTED:
            return f"first event is not agent_started: {types[:3]}"
        if types[-1] != AGENT_COMPLETED or types.count(AGENT_COMPLETED) != 1:
            return f"agent_completed is not last exactly once: {types[-3:]}"
        if types.count(AGENT_STARTED) != 1:
            return "agent_started appears more than once"
        open_calls: dict[str, int] = {}
        for f in frames:
            cid = f.data.get("data", {}).get("tool_call_id")
            if f.type == TOOL_EXECUTING:
                if cid in open_calls:
                    return f"tool_call_id {cid} started twice"
                open_calls[cid] = f.index
            elif f.type == TOOL_COMPLETED:
                if cid not in open_calls:
                    return f"tool_completed {cid} without a tool_executing before it"
                del open_calls[cid]
        if open_calls:
            return f"tool calls never completed: {sorted(open_calls)}"
        if self.require_tools and TOOL_EXECUTING not in types:
            return "no tool was used"
        return None


def follows_lifecycle(require_tools: bool = False) -> _FrameMatcher:
    return _Lifecycle(require_tools)


class _Gapless(_FrameMatcher):
    def __init__(self, start: int | None) -> None:
        self.start = start
        self.expectation = "seq gapless and increasing by one per thread, no duplicates" + (
            f", starting at {start}" if start is not None else "")

    def problem(self, frames: Sequence[Frame]) -> str | None:
        by_thread: dict[str, list[int]] = {}
        for f in frames:
            by_thread.setdefault(f.data.get("thread_id"), []).append(f.data.get("seq"))
        for thread, seqs in by_thread.items():
            first = self.start if self.start is not None else seqs[0]
            if seqs != list(range(first, first + len(seqs))):
                return f"thread {str(thread)[:8]}: seqs {seqs}"
        return None


def gapless_seqs(start: int | None = None) -> _FrameMatcher:
    return _Gapless(start)


class _Envelope(_FrameMatcher):
    expectation = "every event with the full envelope (type, event_id, seq, thread_id, run_id, user_id, " \
                  "agent_name, RFC 3339 ms UTC timestamp, data object)"

    def __init__(self, user_id: str | None, thread_id: str | None) -> None:
        self.user_id = user_id
        self.thread_id = thread_id

    def problem(self, frames: Sequence[Frame]) -> str | None:
        if not frames:
            return "no events"
        for f in frames:
            missing = [k for k in ENVELOPE_FIELDS if k not in f.data]
            if missing:
                return f"event #{f.index} misses {missing}"
            d = f.data
            if not isinstance(d["seq"], int) or d["seq"] < 1:
                return f"event #{f.index} has seq {d['seq']!r}"
            if not isinstance(d["data"], dict):
                return f"event #{f.index} data is not an object"
            if not _TS.match(str(d["timestamp"])):
                return f"event #{f.index} timestamp {d['timestamp']!r} is not RFC 3339 UTC with milliseconds"
            for key in ("event_id", "thread_id", "run_id", "agent_name"):
                if not isinstance(d[key], str) or not d[key]:
                    return f"event #{f.index} {key} is {d[key]!r}"
            if self.user_id is not None and d["user_id"] != self.user_id:
                return f"event #{f.index} is for user {d['user_id']!r}, not {self.user_id!r}"
            if self.thread_id is not None and d["thread_id"] != self.thread_id:
                return f"event #{f.index} is for thread {d['thread_id']!r}, not {self.thread_id!r}"
        ids = [f.data["event_id"] for f in frames]
        if len(set(ids)) != len(ids):
            return "an event_id appears twice"
        return None


def has_envelope(user_id: str | None = None, thread_id: str | None = None) -> _FrameMatcher:
    return _Envelope(user_id, thread_id)


class _OnlyFor(_FrameMatcher):
    def __init__(self, user_id: str, thread_ids: set[str] | None) -> None:
        self.user_id = user_id
        self.thread_ids = thread_ids
        self.expectation = f"only events of user {user_id!r}" + (
            f" in threads {sorted(t[:8] for t in thread_ids)}" if thread_ids is not None else "")

    def problem(self, frames: Sequence[Frame]) -> str | None:
        for f in frames:
            if f.data.get("user_id") != self.user_id:
                return f"event #{f.index} belongs to user {f.data.get('user_id')!r}"
            if self.thread_ids is not None and f.data.get("thread_id") not in self.thread_ids:
                return f"event #{f.index} belongs to thread {f.data.get('thread_id')!r}"
        return None


def only_events_of(user_id: str, thread_ids: set[str] | None = None) -> _FrameMatcher:
    return _OnlyFor(user_id, thread_ids)


def timestamp(frame: Frame) -> datetime:
    return datetime.fromisoformat(frame.data["timestamp"].replace("Z", "+00:00"))


def field(frame: Frame, path: str) -> Any:
    value: Any = frame.data
    for part in path.split("."):
        value = value[part]
    return value
