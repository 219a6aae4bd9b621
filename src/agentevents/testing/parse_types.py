"""Custom parse types so steps speak the domain: people, pronouns, agents, devices, tools, event
types, statuses and durations. Registered once, here; every step module calls ``register_all``.

Pronouns: one step definition serves Alice and Bob alike. ``{she:Pronoun}`` matches she, he or
they; ``{her:Possessive}`` her, his or their; ``{her:Objective}`` her, him or them;
``{herself:Reflexive}`` herself, himself or themselves. A name used twice in one pattern must
be the same word both times ("names her run, her conversation").
"""

from __future__ import annotations

from collections.abc import Callable

import parse
from behave import register_type

from agentevents.auth import TIERS
from agentevents.protocol.envelope import COMPLETION_STATUSES, EVENT_TYPES, TOOL_STATUSES

from .toolcalls import parse_number, parse_tool, parse_tool_call


def words(pattern: str) -> Callable[[str], str]:
    """A type that matches ``pattern`` and gives the matched words as they are."""
    @parse.with_pattern(pattern)
    def convert(text: str) -> str:
        return text
    return convert


parse_person = words(r"[A-Z][a-z]+")
parse_pronoun = words(r"she|he|they")
parse_possessive = words(r"her|his|their")
parse_objective = words(r"her|him|them")
parse_reflexive = words(r"herself|himself|themselves")
parse_agent = words(r"[a-z_]+")
parse_device = words(r"laptop|phone")

ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5}


@parse.with_pattern("|".join(ORDINALS))
def parse_ordinal(text: str) -> int:
    """'second' -> 2."""
    return ORDINALS[text]


ANSWERS = {"approves": True, "declines": False}


@parse.with_pattern("|".join(ANSWERS))
def parse_answer(text: str) -> bool:
    """A person's answer to an approval request: 'approves' -> True, 'declines' -> False."""
    return ANSWERS[text]


parse_event_type = words("|".join(sorted(EVENT_TYPES, key=len, reverse=True)))


@parse.with_pattern(r"\d+(?:\.\d+)?\s*(?:ms|seconds?|s)")
def parse_duration(text: str) -> float:
    """A duration in seconds: '500 ms' -> 0.5, '2 seconds' -> 2.0."""
    value = float("".join(ch for ch in text if ch.isdigit() or ch == "."))
    unit = "".join(ch for ch in text if ch.isalpha())
    return value / 1000 if unit == "ms" else value


parse_tier = words("|".join(TIERS))
parse_status = words("|".join(sorted(COMPLETION_STATUSES)))
parse_tool_status = words("|".join(sorted(TOOL_STATUSES, key=len, reverse=True)))


def register_all() -> None:
    """Register the types with behave (idempotent; every step module calls it first)."""
    register_type(Person=parse_person, Pronoun=parse_pronoun, Possessive=parse_possessive,
                  Objective=parse_objective, Reflexive=parse_reflexive, Agent=parse_agent, Device=parse_device,
                  Ordinal=parse_ordinal, Answer=parse_answer, EventType=parse_event_type, Duration=parse_duration,
                  Tier=parse_tier, Status=parse_status, ToolStatus=parse_tool_status, Tool=parse_tool,
                  ToolCall=parse_tool_call, Number=parse_number)
