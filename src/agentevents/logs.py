"""Structured logs: one key=value line per event, ids on every line that has them.

A line is always one line, and a value is always one value: a string argument of a message that
holds a space, a quote, an ``=``, a backslash or a control character (a newline in a token's
``sub``, a carriage return in an agent's name) is written as a JSON string (logfmt's quoting), and
any control character left in the message is escaped, so nobody can forge log lines or keys
through the data that reaches a message. A traceback is the one thing that may follow on more lines.
"""

from __future__ import annotations

import json
import logging
import re
import sys

# Every C0 control character, and DEL, written as a visible escape.
_ESCAPES = {i: f"\\x{i:02x}" for i in [*range(0x20), 0x7F]} | {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}


_NEEDS_QUOTES = re.compile(r'[\s"=\\\x00-\x1f\x7f]')


def escape(text: str) -> str:
    return text.translate(_ESCAPES)


class Fields(str):
    """Several ``key=value`` pairs already written as logfmt (by :func:`fields`): kept as they are."""


def fields(**values: object) -> Fields:
    """``key=value`` pairs, each value quoted as :func:`logfmt_value` does, for several log lines."""
    return Fields(" ".join(f"{key}={logfmt_value(value)}" for key, value in values.items()))


def logfmt_value(value: object) -> object:
    """An argument as one logfmt value: numbers as they are, anything else as text, quoted (JSON)
    when it is empty or could end the value early."""
    if value is None or isinstance(value, int | float | Fields):
        return value
    text = value if isinstance(value, str) else str(value)
    return json.dumps(text, ensure_ascii=False) if not text or _NEEDS_QUOTES.search(text) else text


class OneLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(logfmt_value(arg) for arg in record.args)
        return super().format(record)

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
