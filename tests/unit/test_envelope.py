from datetime import UTC, datetime

import orjson
import pytest

from agentevents.protocol import envelope as ev


def test_timestamp_is_rfc3339_utc_with_milliseconds():
    stamp = ev.utc_timestamp(datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC))
    assert stamp == "2026-01-02T03:04:05.678Z"


def test_build_event_has_every_envelope_field_but_seq():
    event = ev.build_event("agent_started", thread_id="t", run_id="r", user_id="u", agent_name="math",
                           data={"agent_type": "math"})
    assert set(event) == set(ev.ENVELOPE_FIELDS) - {"seq"}
    assert event["data"] == {"agent_type": "math"}


def test_event_ids_are_unique():
    ids = {ev.build_event("agent_thinking", thread_id="t", run_id="r", user_id="u", agent_name="a",
                          data={})["event_id"] for _ in range(1000)}
    assert len(ids) == 1000


def test_unknown_type_and_bad_completion_status_are_refused():
    with pytest.raises(ValueError):
        ev.build_event("agent_exploded", thread_id="t", run_id="r", user_id="u", agent_name="a", data={})
    with pytest.raises(ValueError):
        ev.build_event("agent_completed", thread_id="t", run_id="r", user_id="u", agent_name="a",
                       data={"status": "fine"})


def test_splice_seq_puts_seq_first_and_keeps_the_rest():
    body = orjson.dumps({"type": "x", "data": {"a": 1}})
    spliced = ev.splice_seq(body, 42)
    assert spliced.startswith(b'{"seq":42,')
    assert orjson.loads(spliced) == {"seq": 42, "type": "x", "data": {"a": 1}}
    assert orjson.loads(ev.splice_seq(b"{}", 7)) == {"seq": 7}
