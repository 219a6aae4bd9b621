"""The event every peer carries: a JSON object of about ``EVENT_BYTES`` bytes.

``{"s": stream, "q": number in the stream, "t": publish time (Unix seconds), "p": padding}``.
Our own systems carry their protocol's envelope instead (``seq``, ids, ``timestamp``, ``data``).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

EVENT_BYTES = 256


def padding_for(stream: str, size: int = EVENT_BYTES) -> str:
    """The padding that brings an event of ``stream`` to about ``size`` bytes (seq of 6 digits)."""
    probe = orjson.dumps({"s": stream, "q": 100000, "t": 1.0e9 + 0.123456, "p": ""})
    return "x" * max(0, size - len(probe))


def event(stream: str, seq: int, pad: str, now: float | None = None) -> dict[str, Any]:
    return {"s": stream, "q": seq, "t": time.time() if now is None else now, "p": pad}


def encode(stream: str, seq: int, pad: str, now: float | None = None) -> bytes:
    return orjson.dumps(event(stream, seq, pad, now))


def decode(obj: dict[str, Any]) -> tuple[str, int, float] | None:
    """(stream, seq, publish time) of a peer event, or None for anything else."""
    try:
        return obj["s"], obj["q"], obj["t"]
    except (KeyError, TypeError):
        return None
