"""Custom parse types so steps speak the domain: people, agents, event types, durations."""

from __future__ import annotations

import parse
from behave import register_type

from agentevents.auth import TIERS
from agentevents.protocol.envelope import COMPLETION_STATUSES, EVENT_TYPES, TOOL_STATUSES


@parse.with_pattern(r"[A-Z][a-z]+")
def parse_person(text: str) -> str:
    return text


@parse.with_pattern(r"[a-z_]+")
def parse_agent(text: str) -> str:
    return text


@parse.with_pattern("|".join(sorted(EVENT_TYPES, key=len, reverse=True)))
def parse_event_type(text: str) -> str:
    return text


@parse.with_pattern(r"(?:" + "|".join(sorted(EVENT_TYPES, key=len, reverse=True)) + r")(?:, (?:"
                    + "|".join(sorted(EVENT_TYPES, key=len, reverse=True)) + r"))*")
def parse_event_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",")]


@parse.with_pattern(r"\d+(?:\.\d+)?\s*(?:ms|seconds?|s)")
def parse_duration(text: str) -> float:
    """A duration in seconds: '500 ms' -> 0.5, '2 seconds' -> 2.0."""
    value = float("".join(ch for ch in text if ch.isdigit() or ch == "."))
    unit = "".join(ch for ch in text if ch.isalpha())
    return value / 1000 if unit == "ms" else value


@parse.with_pattern("|".join(TIERS))
def parse_tier(text: str) -> str:
    return text


@parse.with_pattern("|".join(sorted(COMPLETION_STATUSES)))
def parse_status(text: str) -> str:
    return text


@parse.with_pattern("|".join(sorted(TOOL_STATUSES, key=len, reverse=True)))
def parse_tool_status(text: str) -> str:
    return text


def register_all() -> None:
    """Register the types with behave (idempotent; every step module calls it first)."""
    register_type(Person=parse_person, Agent=parse_agent, EventType=parse_event_type,
                  EventList=parse_event_list, Duration=parse_duration, Tier=parse_tier, Status=parse_status,
                  ToolStatus=parse_tool_status)
