"""Structured logs: one key=value line per event, ids on every line that has them."""

from __future__ import annotations

import logging
import sys


def setup(level: str = "INFO", component: str = "agentevents") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(
        f"ts=%(asctime)s level=%(levelname)s component={component} logger=%(name)s msg=%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("websockets").setLevel(logging.WARNING)
