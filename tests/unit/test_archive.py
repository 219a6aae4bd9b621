"""The archive's pure parts: the row of a published payload, the outbox age, storable text."""

from __future__ import annotations

import asyncpg
import orjson
import pytest

from agentevents.protocol import envelope as ev
from agentevents.protocol.envelope import splice_seq
from agentevents.store import is_data_error, text_safe, text_safe_row
from agentevents.store.archiver import STUCK_AFTER_S, ArchiveStatus, BadEntry, archive_row, backlog_age_s


def published(user_id: str = "alice", text: str = "hello") -> bytes:
    event = ev.build_event(ev.AGENT_THINKING, thread_id="t-1", run_id="r-1", user_id=user_id, agent_name="math",
                           data={"reasoning": text, "step": 1})
    return splice_seq(orjson.dumps(event), 7)


def test_the_row_of_a_published_event_keeps_its_payload_byte_for_byte():
    payload = published(text='quote " newline \n nul \x00 end')
    row = archive_row(payload)
    assert row[:2] == ("t-1", 7)
    assert row[5] == "agent_thinking"
    assert row[6].encode() == payload
    assert "\x00" not in row[6]  # JSON escapes NUL, so the exact text is storable as it is


def test_a_nul_in_an_id_becomes_a_replacement_character_but_the_payload_is_untouched():
    payload = published(user_id="mal\x00lory")
    row = archive_row(payload)
    assert row[4] == "mal\ufffdlory"
    assert row[6].encode() == payload


@pytest.mark.parametrize("payload", [b"not json", b'{"seq": 1}', b'{"seq": "x", "thread_id": "t"}', b"\xff\xfe"])
def test_an_entry_that_is_not_a_published_event_is_refused_with_its_reason(payload):
    with pytest.raises(BadEntry):
        archive_row(payload)


def test_the_backlog_age_comes_from_the_oldest_entry_id():
    assert backlog_age_s(None, 1000.0) == 0.0
    assert backlog_age_s(b"990000-0", 1000.0) == 10.0
    assert backlog_age_s("1000500-3", 1000.0) == 0.0  # clock skew never gives a negative age


def test_the_archive_is_stuck_only_past_its_limit():
    assert not ArchiveStatus(True, 3, STUCK_AFTER_S, 10, 0).stuck
    status = ArchiveStatus(True, 3, STUCK_AFTER_S + 0.1, 10, 0)
    assert status.stuck and status.as_dict()["stuck"] is True


def test_text_safe_changes_only_strings_with_nul():
    assert text_safe_row(("a\x00b", 3, None, "ok")) == ("a\ufffdb", 3, None, "ok")
    same = "plain"
    assert text_safe(same) is same


def test_data_errors_are_told_apart_from_an_unreachable_database():
    assert is_data_error(asyncpg.exceptions.CharacterNotInRepertoireError("invalid byte sequence"))
    assert is_data_error(asyncpg.exceptions.StringDataRightTruncationError("too long"))
    assert not is_data_error(asyncpg.exceptions.AdminShutdownError("terminating"))
    assert not is_data_error(asyncpg.exceptions.ConnectionDoesNotExistError("gone"))
    assert not is_data_error(OSError("refused"))
