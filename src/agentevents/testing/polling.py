"""Polling with a deadline, for what a backend does in the background (writing its archive and
audit, closing connections) where no event announces that it is done."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def poll(fetch: Callable[[], Awaitable[T]], ready: Callable[[T], bool], timeout_s: float,
               interval_s: float | Callable[[T], float] = 0.2) -> T:
    """Fetch until ``ready(value)`` holds or the deadline has passed; the last value either way,
    for the caller to judge and to show in its failure message. ``interval_s`` may depend on the
    last value (a server's advised retry delay)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await fetch()
        if ready(value) or time.monotonic() > deadline:
            return value
        pause = interval_s(value) if callable(interval_s) else interval_s
        await asyncio.sleep(pause)  # polling a condition with a deadline, not waiting for time to pass


async def retry_until(check: Callable[[], Awaitable[object]], what: str, timeout_s: float,
                      on_slow: Callable[[], Awaitable[object]] | None = None, interval_s: float = 0.2) -> float:
    """Retry ``check`` (truthy when done; an exception means not yet) until it succeeds; the time
    taken. ``on_slow`` runs once, half way to the deadline (e.g. ask the supervisor to start it).
    Fails naming ``what`` and the last error once the deadline has passed."""
    started = time.monotonic()
    nudged = False
    last_error: Exception | None = None
    while True:
        try:
            if await check():
                return time.monotonic() - started
        except Exception as exc:  # not back yet
            last_error = exc
        elapsed = time.monotonic() - started
        if on_slow is not None and not nudged and elapsed > timeout_s / 2:
            nudged = True
            await on_slow()
        if elapsed > timeout_s:
            raise AssertionError(f"{what} did not come back within {timeout_s:g}s (last error: {last_error})")
        await asyncio.sleep(interval_s)
