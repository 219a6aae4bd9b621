"""A log line stays one line, whatever the data in it (no forged lines through a token's sub)."""

from __future__ import annotations

import logging

from agentevents.logs import OneLineFormatter, escape


def format_line(message: str, *args: object) -> str:
    formatter = OneLineFormatter("level=%(levelname)s msg=%(message)s")
    record = logging.LogRecord("gateway", logging.INFO, __file__, 1, message, args, None)
    return formatter.format(record)


def test_a_newline_in_the_data_cannot_forge_a_line():
    sub = "alice\nts=2020-01-01 level=ERROR component=gateway msg=forged"
    line = format_line("connected user_id=%s", sub)
    assert "\n" not in line
    assert line == "level=INFO msg=connected user_id=alice\\nts=2020-01-01 level=ERROR component=gateway msg=forged"


def test_every_control_character_is_escaped_and_text_is_kept():
    assert escape("a\rb\tc\x00d\x1be\x7f") == "a\\rb\\tc\\x00d\\x1be\\x7f"
    assert escape("Zoë — 84 ✓") == "Zoë — 84 ✓"


def test_a_traceback_still_follows_on_its_own_lines():
    formatter = OneLineFormatter("msg=%(message)s")
    try:
        raise ValueError("boom")
    except ValueError:
        import sys
        record = logging.LogRecord("w", logging.ERROR, __file__, 1, "failed\nrun", None, sys.exc_info())
    text = formatter.format(record)
    assert text.splitlines()[0] == "msg=failed\\nrun"
    assert "Traceback" in text
