from datetime import UTC, datetime

import orjson
import pytest

from agentevents.protocol import envelope as ev


def test_timestamp_is_rfc3339_utc_with_milliseconds():
    stamp = ev.utc_timestamp(datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC))
    assert stamp == "2026-01-02T03:04:05.678Z"


def test_the_current_time_is_stamped_exactly_as_a_given_time_would_be():
    for _ in range(2000):  # across several milliseconds, and whole seconds if one passes
        before = datetime.now(UTC)
        stamp = ev.utc_timestamp()
        after = datetime.now(UTC)
        assert ev.utc_timestamp(before) <= stamp <= ev.utc_timestamp(after), (before, stamp, after)
        assert len(stamp) == 24 and stamp == ev.utc_timestamp(datetime.fromisoformat(stamp))


def test_build_event_has_every_envelope_field_but_seq():
    event = ev.build_event("agent_started", thread_id="t", run_id="r", user_id="u", agent_name="math",
                           data={"agent_type": "math"})
    assert set(event) == set(ev.ENVELOPE_FIELDS) - {"seq"}
    assert event["data"] == {"agent_type": "math"}


def test_event_ids_are_unique():
    ids = {ev.build_event("agent_thinking", thread_id="t", run_id="r", user_id="u", agent_name="a",
                          data={})["event_id"] for _ in range(1000)}
    assert len(ids) == 1000


def test_event_ids_are_32_hex_digits_that_sort_by_the_millisecond_they_were_made(monkeypatch):
    made = []
    for ms in (1_764_800_000_000, 1_764_800_000_000, 1_764_800_000_001, 1_764_800_123_456):
        monkeypatch.setattr(ev.time, "time_ns", lambda ms=ms: ms * 1_000_000 + 999_999)
        made.append((ms, ev.new_event_id()))
    for ms, event_id in made:
        assert len(event_id) == 32 and event_id == event_id.lower() and int(event_id, 16) >= 0
        assert int(event_id[:12], 16) == ms
    ids = [event_id for _, event_id in made]
    assert ids[0] != ids[1]  # the same millisecond: told apart by the random part
    assert sorted(ids[1:]) == ids[1:] and sorted(ids[::2]) == ids[::2]
    monkeypatch.undo()
    assert int(ev.build_event("agent_thinking", thread_id="t", run_id="r", user_id="u", agent_name="a",
                              data={})["event_id"][:12], 16) == pytest.approx(datetime.now(UTC).timestamp() * 1000,
                                                                            abs=5000)


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


def test_the_pii_prefilter_never_skips_a_text_a_pattern_would_change():
    import random

    from agentevents.protocol import redaction

    def full_pass(text: str) -> str:  # the six patterns, without the prefilter
        for pattern, repl in ((redaction._JWT, "t"), (redaction._BEARER, "b"), (redaction._API_KEY, "k"),
                              (redaction._EMAIL, "e"), (redaction._SSN, "s"), (redaction._CARD, redaction._card)):
            text = pattern.sub(repl, text)
        return text

    rng = random.Random(5)
    alphabet = "ab eyJ.-_@xX19 \u0663BEARERbearer skpkapikeytok4111" + "0123456789" * 3
    skipped = 0
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        if not redaction.may_hold_pii(text):
            skipped += 1
            assert full_pass(text) == text, text
    assert skipped > 1000  # the check did skip texts, so it was exercised
    assert redaction.may_hold_pii("card 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1")  # spaced digits still count
    assert redaction.may_hold_pii("Arabic-Indic \u0664\u0661\u0661\u0661-\u0661\u0661\u0661\u0661 1234 5678 9")


def test_peek_head_reads_seq_and_event_id_as_a_full_parse_would():
    import orjson

    from agentevents.protocol.envelope import peek_head, splice_seq
    event = ev.build_event(ev.AGENT_THINKING, thread_id="t", run_id="r", user_id="u", agent_name="a",
                           data={"reasoning": 'a "quoted" \\ text', "step": 1})
    payload = splice_seq(orjson.dumps(event), 12345)
    assert peek_head(payload) == (12345, event["event_id"])
    # Any other shape (keys in another order, spaces, an escaped id) is parsed in full.
    for other in (b'{"type":"agent_thinking","seq":7,"event_id":"e7"}', b'{"seq": 8, "type": "x", "event_id": "e8"}',
                  b'{"seq":9,"type":"agent_thinking","event_id":"e\\u0039"}'):
        head = orjson.loads(other)
        assert peek_head(other) == (head["seq"], head["event_id"])
