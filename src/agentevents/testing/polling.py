"""Polling with a deadline, for what a backend does in the background (writing its archive and
audit, closing connections) where no event announces that it is done."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def poll(fetch: Callable[[], Awaitable[T]], ready: Callable[[T], bool], timeout_s: float,
               interval_s: float = 0.2) -> T:
    """Fetch until ``ready(value)`` holds or the deadline has passed; the last value either way,
    for the caller to judge and to show in its failure message."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await fetch()
        if ready(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(interval_s)  # polling a condition with a deadline, not waiting for time to pass
