"""Reading tool calls from what a user received, for the tool scenarios (features/steps/tools*.py).

A tool call is one ``tool_executing`` (the announcement) closed by one ``tool_completed`` with
the same ``tool_call_id``; in between there may be ``tool_progress`` notices. Every helper that
fails raises an AssertionError that lists the frames received.
"""

from __future__ import annotations

from typing import Any

import parse

from .client import Frame, describe

# -- what the scripted agents use, and the checks compare with -----------------------------
EMAIL = "jane.roe@example.com"
CARD = "4111 1111 1111 1111"
NOTE_EMAIL = "ada.k@example.com"
SQL_FIRST_CUSTOMERS = "SELECT id, name, country FROM customers ORDER BY id LIMIT 3"
WEATHER = {"city": "Lisbon", "forecast": [{"day": "Mon", "high_c": 24, "low_c": 16},
                                          {"day": "Tue", "high_c": 22, "low_c": 15}]}
TOOL_FOLLOW_UP = {"search": ["Compare Mars with Jupiter"], "calculator": ["Convert the distance to miles"]}
RUN_FOLLOW_UP = ["Ask how long a trip to Mars takes"]
PAY_PURPOSE = "pay the invoice"
RESERVE_PURPOSE = "reserve two seats"
PAY_CARD_PURPOSE = "take the payment"
LARGE_FIGURE = "9e15"  # 4 characters in the file, 18 in the JSON result ("9000000000000000.0")


# -- parse types: "calculator", "custom.greet", "second calculator", 1647.01 -----------------
_TOOL = r"[a-z_]+(?:\.[a-z0-9_]+)?"
_ORDINALS = {"first": 0, "second": 1, "third": 2, "last": -1}


@parse.with_pattern(_TOOL)
def parse_tool(text: str) -> str:
    return text


@parse.with_pattern(r"(?:(?:first|second|third|last) )?" + _TOOL)
def parse_tool_call(text: str) -> tuple[int, str]:
    """ "calculator" -> (0, "calculator"); "second custom.discount" -> (1, "custom.discount")."""
    word, _, rest = text.partition(" ")
    return (_ORDINALS[word], rest) if rest else (0, word)


@parse.with_pattern(r"-?\d+(?:\.\d+)?")
def parse_number(text: str) -> int | float:
    return float(text) if "." in text else int(text)


# -- reading what the user received -----------------------------------------------------------
def fail(problem: str, frames: list[Frame]) -> AssertionError:
    return AssertionError(f"{problem}\n{describe(frames)}")


def data(frame: Frame) -> dict[str, Any]:
    return frame.data.get("data") or {}


def calls_of(events: list[Frame], tool_name: str | None = None) -> list[Frame]:
    """tool_executing events, in the order received (optionally of one tool)."""
    return [f for f in events if f.type == "tool_executing"
            and (tool_name is None or data(f).get("tool_name") == tool_name)]


def tool_completions(events: list[Frame]) -> list[Frame]:
    """tool_completed events, in the order received."""
    return [f for f in events if f.type == "tool_completed"]


def completions_of(events: list[Frame], call: Frame) -> list[Frame]:
    cid = data(call).get("tool_call_id")
    return [f for f in events if f.type == "tool_completed" and data(f).get("tool_call_id") == cid]


def the_call(events: list[Frame], which: tuple[int, str]) -> Frame:
    index, tool_name = which
    found = calls_of(events, tool_name)
    if not found or (index >= 0 and len(found) <= index):
        raise fail(f"expected at least {max(index, 0) + 1} {tool_name} call(s), got {len(found)}", events)
    return found[index]


def completion(events: list[Frame], call: Frame) -> Frame:
    done = completions_of(events, call)
    if len(done) != 1:
        raise fail(f"{data(call).get('tool_name')} call {data(call).get('tool_call_id')} has {len(done)} "
                   "tool_completed events, expected exactly one", events)
    return done[0]


def call_for(events: list[Frame], purpose: str) -> Frame:
    """The one tool call the agent made for this purpose."""
    found = [c for c in calls_of(events) if data(c).get("purpose") == purpose]
    if len(found) != 1:
        raise fail(f"{len(found)} tool calls to {purpose}, expected one", events)
    return found[0]


def raw_of(context, name: str) -> list[Frame]:
    return context.world.frames_of(name)


async def defined_end(context, name: str) -> None:
    """After the run ended: an in-order barrier on each open connection, then a short grace."""
    await context.world.quiet([c for c in context.world.person(name).clients if c.connected])
