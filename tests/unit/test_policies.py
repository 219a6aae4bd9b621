from agentevents.protocol.limits import (
    MAX_REASONING_CHARS,
    TRUNCATION_MARKER,
    ThinkingThrottle,
    TokenBucket,
    summarize_result,
    truncate_text,
)
from agentevents.protocol.redaction import luhn_ok, redact, redact_text


def test_redaction_replaces_emails_cards_tokens_and_keys():
    text = ("mail bob@example.com, card 4111 1111 1111 1111, jwt eyJhbGciOi.eyJzdWIiOiJh.c2lnbmF0dXJl, "
            "key sk_live1234567890abcdef, ssn 123-45-6789")
    out, n = redact_text(text)
    for secret in ("bob@example.com", "4111 1111 1111 1111", "eyJhbGciOi", "sk_live1234567890abcdef",
                   "123-45-6789"):
        assert secret not in out
    assert n == 5
    assert "[REDACTED:email]" in out and "[REDACTED:card]" in out


def test_numbers_that_fail_luhn_are_not_cards():
    out, n = redact_text("order 1234 5678 9012 3456 shipped")
    assert n == 0 and "1234 5678 9012 3456" in out
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")


def test_redact_walks_nested_values_and_keeps_keys():
    value, n = redact({"user": {"email": "a@b.io"}, "list": ["c@d.io", 3]})
    assert value == {"user": {"email": "[REDACTED:email]"}, "list": ["[REDACTED:email]", 3]}
    assert n == 2


def test_truncation_marks_what_was_cut():
    text, meta = truncate_text("x" * (MAX_REASONING_CHARS + 10))
    assert len(text) == MAX_REASONING_CHARS and text.endswith(TRUNCATION_MARKER)
    assert meta == {"truncated": True, "full_length": MAX_REASONING_CHARS + 10,
                    "shown_length": MAX_REASONING_CHARS - len(TRUNCATION_MARKER)}
    assert truncate_text("short") == ("short", {"truncated": False})


def test_large_list_results_keep_a_head_and_say_so():
    result, meta = summarize_result(list(range(10_000)), limit=1000)
    assert meta["result_truncated"] and meta["total_items"] == 10_000
    assert result == list(range(meta["shown_items"]))
    small, meta = summarize_result({"a": 1})
    assert small == {"a": 1} and not meta["result_truncated"]


def test_token_bucket_allows_a_burst_then_the_rate():
    bucket = TokenBucket(rate=10, burst=3)
    assert [bucket.allow(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.retry_after() > 0
    assert bucket.allow(0.1)


def test_thinking_throttle_passes_a_burst_and_coalesces_a_flood():
    throttle = ThinkingThrottle(rate=10, burst=5)
    emitted = [throttle.offer(0.0, f"t{i}") for i in range(8)]
    assert [e for e in emitted[:5]] == [(f"t{i}", 1) for i in range(5)]
    assert emitted[5:] == [None, None, None]
    assert throttle.flush() == ("t7", 3)
    assert throttle.flush() is None
