"""Waiting for the gateways to settle: what they hold (open connections, followed conversations,
file descriptors, resident memory) read through the target's control (``Control.gateway_stats``)
until a condition holds, with a deadline. For the @process_stats scenarios about leaks (T019,
T030, T111).
"""

from __future__ import annotations

from collections.abc import Callable

from .control import Control, GatewayStats
from .polling import poll


async def settled(control: Control, predicate: Callable[[dict[str, GatewayStats]], bool], timeout_s: float,
                  what: str) -> dict[str, GatewayStats]:
    """Poll until ``predicate(stats)`` holds; fail after the deadline with the last statistics seen."""
    now = await poll(control.gateway_stats, predicate, timeout_s)
    if not predicate(now):
        raise AssertionError(f"{what} within {timeout_s:g} s; gateways now: {now}")
    return now
