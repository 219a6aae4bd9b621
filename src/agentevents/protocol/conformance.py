"""The conformance agent's steps language as code: its version, and the check of a script.

A backend runs the behave suite by implementing the ``scripted`` agent that docs/conformance.md
defines. The steps it is given (``options.steps``) are a JSON list whose grammar is
``schema/conformance/steps.json``; ``validate_steps`` applies that schema and, when a script
breaks it, names the step and the problem in one sentence.

    >>> validate_steps([{"think": "hello"}, {"sleep": 0.1}])
    >>> validate_steps([{"think": "hello"}, {"sleep": -1}])
    Traceback (most recent call last):
    ...
    agentevents.protocol.conformance.InvalidSteps: step 2 (sleep) at sleep: -1 is less than the minimum of 0
"""

from __future__ import annotations

from collections import OrderedDict
from functools import cache
from typing import Any

import orjson
from jsonschema import Draft202012Validator, ValidationError
from jsonschema.exceptions import best_match

from .schemas import schema_file

CONFORMANCE_VERSION = "1"
SCHEMA_KIND, SCHEMA_NAME = "conformance", "steps"


class InvalidSteps(ValueError):
    """A steps list the schema refuses; the message names the step (1-based) and the problem."""


@cache
def _schema() -> dict[str, Any]:
    return schema_file(SCHEMA_KIND, SCHEMA_NAME)


def steps_schema() -> dict[str, Any]:
    """A copy of the steps schema (``schema/conformance/steps.json``)."""
    return schema_file(SCHEMA_KIND, SCHEMA_NAME)


@cache
def step_kinds() -> tuple[str, ...]:
    """The step kinds, in the schema's order: each is the one action key of a step object."""
    return tuple(ref["$ref"].rsplit("/", 1)[1] for ref in _schema()["$defs"]["step"]["oneOf"])


@cache
def _validator(definition: str | None = None) -> Draft202012Validator:
    """The whole list's validator, or one ``$defs`` entry's (resolved inside the same document)."""
    schema = _schema()
    if definition is not None:
        schema = {key: schema[key] for key in ("$schema", "$id", "$defs")} | {"$ref": f"#/$defs/{definition}"}
    return Draft202012Validator(schema)


def _kinds_of(step: dict[str, Any]) -> list[str]:
    """The step kinds a step object names (a valid step names exactly one)."""
    return [k for k in step_kinds() if k in step]


def _where(error: ValidationError) -> str:
    return "/".join(str(p) for p in error.absolute_path)


def _explain(step: Any, label: str) -> str:
    """Why one step is refused: no kind, several kinds, or the first problem inside its kind."""
    if not isinstance(step, dict):
        return f"{label} must be an object with one step kind, not {type(step).__name__}"
    kinds = _kinds_of(step)
    if not kinds:
        return (f"{label} has no known step kind (its keys: {', '.join(map(str, step)) or 'none'}); "
                f"known kinds: {', '.join(step_kinds())}")
    if len(kinds) > 1:
        return f"{label} has several step kinds ({', '.join(kinds)}); a step has exactly one"
    kind = kinds[0]
    if kind == "repeat" and "step" in step and not _validator("step").is_valid(step["step"]):
        return _explain(step["step"], f"{label} (repeat) > step")
    error = best_match(_validator(kind).iter_errors(step))
    where = _where(error)
    return f"{label} ({kind}){f' at {where}' if where else ''}: {_message(error)}"


def _message(error: ValidationError) -> str:
    """jsonschema's message, said plainly for the two checks whose message names no rule."""
    if "propertyNames" in error.schema_path:
        return f"key {error.instance!r} is reserved (the server sets it)"
    if error.validator == "oneOf" and all("type" in alt for alt in error.validator_value):
        return f"{error.instance!r} is neither {' nor '.join(alt['type'] for alt in error.validator_value)}"
    return error.message


_VALID_SCRIPTS: OrderedDict[bytes, None] = OrderedDict()  # scripts seen valid lately (as JSON), at most 512


def _each_step_valid(steps: Any) -> bool:
    """The schema's verdict, reached faster: a step is valid under ``oneOf`` exactly when it has one
    kind key and is valid under that kind's definition (each requires its key and allows no
    other kind), so only that definition is tried."""
    if not isinstance(steps, list) or not steps or len(steps) > _schema()["maxItems"]:
        return False
    for step in steps:
        if not isinstance(step, dict):
            return False
        found = _kinds_of(step)
        if len(found) != 1 or not _validator(found[0]).is_valid(step):
            return False
    return True


def problems(steps: Any) -> list[str]:
    """Every reason the schema refuses ``steps`` (empty when it is a valid script)."""
    try:
        key = orjson.dumps(steps)
    except TypeError:
        key = None
    if key is not None and key in _VALID_SCRIPTS:
        _VALID_SCRIPTS.move_to_end(key)
        return []
    if _each_step_valid(steps):
        if key is not None:
            _VALID_SCRIPTS[key] = None
            if len(_VALID_SCRIPTS) > 512:
                _VALID_SCRIPTS.popitem(last=False)
        return []
    errors = list(_validator().iter_errors(steps))
    if not errors:
        return []
    if not isinstance(steps, list):
        return [f"steps must be a list of step objects, not {type(steps).__name__}"]
    found = [_explain(step, f"step {index}") for index, step in enumerate(steps, start=1)
             if not _validator("step").is_valid(step)]
    if len(steps) > _schema()["maxItems"]:
        found.insert(0, f"steps has {len(steps)} items; at most {_schema()['maxItems']} are allowed")
    return found or [best_match(errors).message]


def validate_steps(steps: Any) -> None:
    """Raise ``InvalidSteps`` unless ``steps`` follows ``schema/conformance/steps.json``."""
    found = problems(steps)
    if found:
        more = f" (and {len(found) - 1} more problem(s))" if len(found) > 1 else ""
        raise InvalidSteps(found[0] + more)


__all__ = ["CONFORMANCE_VERSION", "InvalidSteps", "problems", "step_kinds", "steps_schema", "validate_steps"]
