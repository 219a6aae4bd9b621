"""Named scripts for the scripted agent, so feature files say what an agent does in words.

Step modules register phrases: ``register("thinks {n:d} times in a burst", lambda n: {...})``.
The feature says "When Alice starts an agent that thinks 40 times in a burst".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import parse

ScriptBuilder = Callable[..., dict[str, Any]]
_SCRIPTS: list[tuple[parse.Parser, ScriptBuilder]] = []


def register(phrase: str, builder: ScriptBuilder) -> None:
    """Register a behaviour phrase (parse syntax) and the options it builds."""
    _SCRIPTS.append((parse.compile(phrase), builder))


def script_for(behaviour: str) -> dict[str, Any]:
    for parser, builder in _SCRIPTS:
        found = parser.parse(behaviour)
        if found is not None:
            return builder(*found.fixed, **found.named)
    known = "\n  ".join(sorted(p._format for p, _ in _SCRIPTS))
    raise AssertionError(f"no script for behaviour {behaviour!r}; known behaviours:\n  {known}")


def steps(*items: dict[str, Any], **options: Any) -> dict[str, Any]:
    """Options for the scripted agent: the steps, plus any other option (timeout_s, files, ...)."""
    return {"steps": list(items), **options}


def complete(status: str = "completed", result: Any = None, summary: str = "done", **extra: Any) -> dict[str, Any]:
    return {"complete": {"status": status, "result": result, "summary": summary, "extra": extra}}
