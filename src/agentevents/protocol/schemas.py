"""The published JSON Schemas as validators: every server frame and every client message.

The schema files live in ``schema/server/`` and ``schema/client/`` (the same files published in
docs/schema); ``schema/conformance/`` holds the conformance agent's steps language
(``agentevents.protocol.conformance``). Per-type event schemas refer to ``event.json`` with a
relative ``$ref``; the refs resolve offline through a ``referencing.Registry`` built from the
files' ``$id`` values.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, ValidationError
from jsonschema.exceptions import best_match
from referencing import Registry, Resource

from .envelope import EVENT_TYPES

# Server frames that are not events, each with a schema file of the same name.
CONTROL_FRAME_TYPES = ("connection_established", "run_accepted", "subscribed", "unsubscribed", "replay_complete",
                       "resumed", "cancel_accepted", "respond_accepted", "auth_refreshed", "pong", "error")
EVENT_SCHEMA = "event"


def _folder(kind: str) -> Any:
    return resources.files(__package__).joinpath("schema", kind)


@cache
def _schemas(kind: str) -> dict[str, dict[str, Any]]:
    """name -> schema for every file in ``schema/<kind>/``."""
    found: dict[str, dict[str, Any]] = {}
    for entry in _folder(kind).iterdir():
        if entry.name.endswith(".json"):
            found[entry.name[: -len(".json")]] = json.loads(entry.read_text(encoding="utf-8"))
    return found


@cache
def registry() -> Registry:
    """Every server and client schema, by ``$id``, so ``$ref`` between the files resolves offline."""
    resources_ = [(schema["$id"], Resource.from_contents(schema))
                  for kind in ("server", "client") for schema in _schemas(kind).values()]
    return Registry().with_resources(resources_)


@cache
def _validator(kind: str, name: str) -> Draft202012Validator:
    try:
        schema = _schemas(kind)[name]
    except KeyError:
        raise LookupError(f"no {kind} schema named {name!r}") from None
    return Draft202012Validator(schema, registry=registry())


def schema_file(kind: str, name: str) -> dict[str, Any]:
    """A copy of one published schema: ``schema_file("conformance", "steps")`` is ``schema/conformance/steps.json``."""
    try:
        return copy.deepcopy(_schemas(kind)[name])
    except KeyError:
        raise LookupError(f"no {kind} schema named {name!r}") from None


def server_schema(name: str) -> dict[str, Any]:
    """A copy of one server schema, e.g. ``server_schema("tool_completed")`` or ``server_schema("event")``."""
    return schema_file("server", name)


def client_schema(name: str) -> dict[str, Any]:
    return schema_file("client", name)


def server_schema_for(frame_type: str) -> str:
    """Which server schema applies to a frame type (events without their own file use ``event``)."""
    if frame_type in CONTROL_FRAME_TYPES:
        return frame_type
    if frame_type in EVENT_TYPES:
        return frame_type if frame_type in _schemas("server") else EVENT_SCHEMA
    raise ValidationError(f"unknown server frame type {frame_type!r}; known: "
                          f"{', '.join(sorted((*CONTROL_FRAME_TYPES, *EVENT_TYPES)))}")


def _where(error: ValidationError) -> str:
    return "/".join(str(p) for p in error.absolute_path) or "(top level)"


def _check(kind: str, name: str, obj: Any) -> None:
    errors = list(_validator(kind, name).iter_errors(obj))
    if not errors:
        return
    error = best_match(errors)
    others = [f"{_where(e)}: {e.message[:120]}" for e in errors if e is not error][:3]
    also = f" (also: {'; '.join(others)})" if others else ""
    raise ValidationError(f"{name} {'frame' if kind == 'server' else 'message'} is invalid at {_where(error)}: "
                          f"{error.message}{also}", validator=error.validator, path=error.path, cause=error.cause,
                          context=error.context, validator_value=error.validator_value, instance=error.instance,
                          schema=error.schema, schema_path=error.schema_path)


def _type_of(obj: Any, what: str) -> str:
    if not isinstance(obj, dict):
        raise ValidationError(f"a {what} must be a JSON object, not {type(obj).__name__}")
    frame_type = obj.get("type")
    if not isinstance(frame_type, str):
        raise ValidationError(f"a {what} needs a string field 'type'")
    return frame_type


def validate_server_frame(frame: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``frame`` matches the schema of its ``type``."""
    _check("server", server_schema_for(_type_of(frame, "server frame")), frame)


def validate_client_message(msg: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``msg`` matches the client schema of its ``type``."""
    msg_type = _type_of(msg, "client message")
    if msg_type not in _schemas("client"):
        raise ValidationError(f"unknown client message type {msg_type!r}; known: "
                              f"{', '.join(sorted(_schemas('client')))}")
    _check("client", msg_type, msg)


__all__ = ["CONTROL_FRAME_TYPES", "client_schema", "registry", "schema_file", "server_schema", "server_schema_for",
           "validate_client_message", "validate_server_frame"]
