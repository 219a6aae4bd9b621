"""Structured logs: one key=value line per event, ids on every line that has them.

A line is always one line: control characters in a message (a newline in a token's ``sub``, a
carriage return in an agent's name) are written escaped, so nobody can forge log lines through
the data that reaches a message. A traceback is the one thing that may follow on more lines.
"""

from __future__ import annotations

import logging
import sys

# Every C0 control character, and DEL, written as a visible escape.
_ESCAPES = {i: f"\\x{i:02x}" for i in [*range(0x20), 0x7F]} | {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}


def escape(text: str) -> str:
    return text.translate(_ESCAPES)


class OneLineFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = escape(record.message)
        return super().formatMessage(record)


def setup(level: str = "INFO", component: str = "agentevents") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter(
        f"ts=%(asctime)s level=%(levelname)s component={component} logger=%(name)s msg=%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("websockets").setLevel(logging.WARNING)
