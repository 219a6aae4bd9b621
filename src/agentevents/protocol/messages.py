"""Client messages: parse a frame into a validated dict, or say precisely what is wrong.

Every frame is checked at the door, before anything recursive sees it: its size (``MAX_MESSAGE_BYTES``),
then, once parsed, how deep its arrays and objects nest (``MAX_DEPTH``, walked without recursion).
Only then is it validated, with the JSON Schemas in ``schema/client/`` (the same files published in
docs/schema), and handed on (serializers and validators further down recurse per level).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import orjson
from jsonschema import Draft202012Validator, validators

from .codes import ErrorCode

CLIENT_TYPES = ("start_agent", "subscribe", "unsubscribe", "resume", "cancel_agent", "auth_refresh",
                "respond", "ping")
MAX_MESSAGE_BYTES = 64 * 1024
MAX_DEPTH = 32  # levels of arrays and objects, the message object itself being level 1


@dataclass(frozen=True)
class ProtocolError(Exception):
    code: ErrorCode
    message: str
    request_id: str | None = None
    details: dict[str, Any] | None = None

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def _strict_integer(_checker: Any, value: Any) -> bool:
    """An integer is an int: JSON Schema also counts 1.0, 1e0 and -0.0, which no seq is."""
    return isinstance(value, int) and not isinstance(value, bool)


StrictValidator = validators.extend(
    Draft202012Validator, type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer))


@cache
def validator(message_type: str) -> Draft202012Validator:
    text = resources.files(__package__).joinpath("schema", "client", f"{message_type}.json").read_text()
    return StrictValidator(json.loads(text))


def _request_id(obj: Any) -> str | None:
    if isinstance(obj, dict):
        rid = obj.get("request_id")
        if isinstance(rid, str) and 0 < len(rid) <= 128:
            return rid
    return None


def peek_request_id(frame: str | bytes) -> str | None:
    """The request_id of a frame refused before validation (e.g. rate limited), when readable."""
    if len(frame) > MAX_MESSAGE_BYTES:
        return None
    try:
        return _request_id(orjson.loads(frame))
    except orjson.JSONDecodeError:
        return None


def too_deep(obj: Any, limit: int = MAX_DEPTH) -> str | None:
    """Where ``obj`` nests arrays and objects more than ``limit`` levels deep (``obj`` itself is level 1):
    the top-level field holding the first container past the limit, or None. Iterative, so any depth is
    safe to ask about."""
    stack: list[tuple[Any, int, str]] = [(obj, 1, "")]
    while stack:
        value, depth, where = stack.pop()
        if depth > limit:
            return where or "(message)"
        children = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in children:
            if isinstance(child, dict | list):
                # The path is named by its top-level field: that is the part of the message at fault.
                stack.append((child, depth + 1, str(key)[:64] if depth == 1 else where))
    return None


def parse_client_message(frame: str | bytes) -> dict[str, Any]:
    """Return the message as a dict, or raise ProtocolError with a stable code."""
    data = frame.encode() if isinstance(frame, str) else frame
    size = len(data)
    if size > MAX_MESSAGE_BYTES:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"message is {size} bytes; the limit is {MAX_MESSAGE_BYTES}",
                            details={"limit": MAX_MESSAGE_BYTES, "size": size})
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(ErrorCode.MALFORMED, f"not valid JSON: {exc}") from None
    rid = _request_id(obj)
    # A frame with no more brackets than the limit cannot nest deeper: most frames skip the walk.
    if data.count(b"[") + data.count(b"{") > MAX_DEPTH and isinstance(obj, dict | list):
        where = too_deep(obj)
        if where is not None:
            mtype = obj.get("type") if isinstance(obj, dict) else None
            prefix = f"{mtype}: " if mtype in CLIENT_TYPES else ""
            raise ProtocolError(ErrorCode.MALFORMED, f"{prefix}{where}: more than {MAX_DEPTH} levels of nested "
                                f"arrays and objects (the limit is {MAX_DEPTH})", rid, details={"limit": MAX_DEPTH})
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.MALFORMED, "a message must be a JSON object")
    mtype = obj.get("type")
    if not isinstance(mtype, str):
        raise ProtocolError(ErrorCode.MALFORMED, "missing string field 'type'", rid)
    if mtype not in CLIENT_TYPES:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {mtype[:64]!r}", rid,
                            details={"known_types": list(CLIENT_TYPES)})
    error = next(iter(sorted(validator(mtype).iter_errors(obj), key=lambda e: list(e.path))), None)
    if error is not None:
        where = "/".join(str(p) for p in error.path) or "(message)"
        raise ProtocolError(ErrorCode.MALFORMED, f"{mtype}: {where}: {error.message[:200]}", rid)
    return obj


def error_frame(code: str, message: str, request_id: str | None = None,
                details: dict[str, Any] | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "code": str(code), "message": message}
    if request_id is not None:
        frame["request_id"] = request_id
    if details:
        frame["details"] = details
    return frame
