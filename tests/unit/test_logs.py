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
    assert line == 'level=INFO msg=connected user_id="alice\\nts=2020-01-01 level=ERROR component=gateway msg=forged"'


def test_a_value_with_spaces_quotes_or_equals_stays_one_value():
    for value in ('a b', 'a"b', "a=b", "a\\b", "", "tab\there", "nul\x00", "del\x7f"):
        line = format_line("connected user_id=%s code=%d", value, 1000)
        assert line.count(" code=1000") == 1 and line.endswith(" code=1000"), line
        quoted = line[len("level=INFO msg=connected user_id="):-len(" code=1000")]
        assert quoted.startswith('"') and quoted.endswith('"'), line
        assert "\n" not in line and "\x00" not in line, line
    assert format_line("user_id=%s n=%d ok=%s", "alice-1", 3, None) == "level=INFO msg=user_id=alice-1 n=3 ok=None"
    assert format_line("error=%s", ValueError("bad value here")) == 'level=INFO msg=error="bad value here"'


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


def test_fields_written_together_keep_each_value_whole():
    from agentevents.logs import fields
    tag = fields(connection_id="conn_1", user_id="bob\nlevel=ERROR x=y")
    line = format_line("disconnected %s code=%d", tag, 1000)
    assert line == 'level=INFO msg=disconnected connection_id=conn_1 user_id="bob\\nlevel=ERROR x=y" code=1000'
