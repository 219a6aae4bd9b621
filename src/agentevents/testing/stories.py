"""A run as the user sees it, in her words: "the agent start, plan, search, read the results and
answer" is a sequence of events (with the tool used, where one is). The feature says the story;
the check compares it, event by event, with what arrived.
"""

from __future__ import annotations

from collections.abc import Sequence

from .client import Frame, describe

Beat = tuple[str, str | None]  # (event type, tool name or None)

START: Beat = ("agent_started", None)
THOUGHT: Beat = ("agent_thinking", None)
ERROR: Beat = ("agent_error", None)
END: Beat = ("agent_completed", None)


def tool(name: str) -> list[Beat]:
    """A tool call as the user sees it: announced, then its result."""
    return [("tool_executing", name), ("tool_completed", name)]


STORIES: dict[str, list[Beat]] = {
    "start, think twice, use the calculator and finish": [START, THOUGHT, THOUGHT, *tool("calculator"), END],
    "start, plan, search, read the results and answer": [START, THOUGHT, *tool("search"), THOUGHT, END],
    "think, hit the error, think again and finish": [START, THOUGHT, ERROR, THOUGHT, END],
}


def thoughts_between_start_and_end(n: int) -> list[Beat]:
    return [START, *[THOUGHT] * n, END]


def error_instead_of_start() -> list[Beat]:
    return [ERROR, END]


def story(phrase: str) -> list[Beat]:
    if phrase not in STORIES:
        known = "\n  ".join(sorted(STORIES))
        raise AssertionError(f"no story {phrase!r}; known stories:\n  {known}")
    return STORIES[phrase]


def beats(events: Sequence[Frame]) -> list[Beat]:
    out: list[Beat] = []
    for f in events:
        name = (f.data.get("data") or {}).get("tool_name") if f.type.startswith("tool_") else None
        out.append((f.type, name))
    return out


def assert_story(events: Sequence[Frame], expected: Sequence[Beat], what: str) -> None:
    """Fail unless the run's events are exactly the expected beats, naming the first difference."""
    got = beats(events)
    if got == list(expected):
        return
    first = next((i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b),
                 min(len(got), len(expected)))
    raise AssertionError(f"the user did not see {what}: event {first + 1} is "
                         f"{got[first] if first < len(got) else 'missing'}, expected "
                         f"{expected[first] if first < len(expected) else 'nothing more'}\n"
                         f"  expected {list(expected)}\n  received {got}\n{describe(list(events))}")
