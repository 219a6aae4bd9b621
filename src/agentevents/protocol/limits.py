"""Size, frequency and rate rules: truncation, thinking throttling, token buckets. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

MAX_REASONING_CHARS = 4000
MAX_RESULT_BYTES = 16 * 1024
TRUNCATION_MARKER = "…[truncated]"


def truncate_text(text: str, limit: int = MAX_REASONING_CHARS) -> tuple[str, dict[str, Any]]:
    """Cut text to ``limit`` characters with a continuation marker; say what was cut."""
    if len(text) <= limit:
        return text, {"truncated": False}
    keep = limit - len(TRUNCATION_MARKER)
    return text[:keep] + TRUNCATION_MARKER, {"truncated": True, "full_length": len(text), "shown_length": keep}


def summarize_result(result: Any, limit: int = MAX_RESULT_BYTES) -> tuple[Any, dict[str, Any]]:
    """Keep results under ``limit`` serialized bytes: lists keep a head, text is cut."""
    size = len(orjson.dumps(result, default=str))
    if size <= limit:
        return result, {"result_truncated": False, "result_bytes": size}
    meta: dict[str, Any] = {"result_truncated": True, "result_bytes": size}
    if isinstance(result, list):
        kept: list[Any] = []
        used = 2
        for item in result:
            n = len(orjson.dumps(item, default=str)) + 1
            if used + n > limit:
                break
            kept.append(item)
            used += n
        meta.update(total_items=len(result), shown_items=len(kept))
        return kept, meta
    text = result if isinstance(result, str) else orjson.dumps(result, default=str).decode()
    cut, _ = truncate_text(text, limit // 2)
    meta["shown_length"] = len(cut)
    return cut, meta


@dataclass(slots=True)
class TokenBucket:
    """Classic token bucket; ``now`` is passed in so tests need no clock."""

    rate: float        # tokens per second
    burst: float
    tokens: float = field(default=-1.0)
    updated: float = 0.0

    def allow(self, now: float, cost: float = 1.0) -> bool:
        if self.tokens < 0:
            self.tokens, self.updated = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False

    def retry_after(self, cost: float = 1.0) -> float:
        return max(0.0, (cost - self.tokens) / self.rate)


@dataclass
class ThinkingThrottle:
    """Thinking events per run pass through a token bucket (``rate``/s, ``burst``); the rest
    are coalesced.

    ``offer`` returns the reasoning to emit now with how many updates it stands for, or None
    when the update is held back; ``flush`` returns what is held when the run moves on (any
    other event, or the end), so the latest reasoning is never lost. A burst up to ``burst``
    passes untouched.
    """

    rate: float = 20.0
    burst: float = 50.0
    held: list[Any] = field(default_factory=list)
    bucket: TokenBucket | None = None

    def offer(self, now: float, reasoning: Any) -> tuple[Any, int] | None:
        if self.bucket is None:
            self.bucket = TokenBucket(self.rate, self.burst)
        self.held.append(reasoning)
        if not self.bucket.allow(now):
            return None
        return self._release()

    def flush(self) -> tuple[Any, int] | None:
        return self._release() if self.held else None

    def _release(self) -> tuple[Any, int]:
        count = len(self.held)
        text = self.held[-1]
        self.held.clear()
        return text, count
