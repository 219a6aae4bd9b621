import orjson
import pytest

from agentevents.protocol.codes import CloseCode, ErrorCode, should_reconnect
from agentevents.protocol.messages import MAX_MESSAGE_BYTES, ProtocolError, parse_client_message


def parse_error(frame) -> ProtocolError:
    with pytest.raises(ProtocolError) as err:
        parse_client_message(frame)
    return err.value


def test_a_valid_start_agent_is_accepted():
    msg = parse_client_message(orjson.dumps({"type": "start_agent", "agent_type": "math", "message": "1+1",
                                             "request_id": "r1"}))
    assert msg["agent_type"] == "math"


@pytest.mark.parametrize("frame, code", [
    (b"{not json", ErrorCode.MALFORMED),
    (b"[1, 2]", ErrorCode.MALFORMED),
    (b'{"no_type": 1}', ErrorCode.MALFORMED),
    (b'{"type": "launch_missiles"}', ErrorCode.UNKNOWN_TYPE),
    (b'{"type": "start_agent", "message": "x"}', ErrorCode.MALFORMED),
    (b'{"type": "subscribe", "thread_id": "t", "since_seq": -1}', ErrorCode.MALFORMED),
    (b'{"type": "ping", "extra": true}', ErrorCode.MALFORMED),
    (b'{"type": "subscribe", "thread_id": "../../etc"}', ErrorCode.MALFORMED),
])
def test_malformed_messages_get_stable_codes(frame, code):
    assert parse_error(frame).code == code


def test_request_id_is_echoed_in_errors_when_readable():
    err = parse_error(b'{"type": "cancel_agent", "request_id": "abc"}')
    assert err.request_id == "abc"


def test_oversized_messages_are_refused_before_parsing():
    frame = b'{"type": "ping", "pad": "' + b"x" * MAX_MESSAGE_BYTES + b'"}'
    err = parse_error(frame)
    assert err.code == ErrorCode.TOO_LARGE and err.details["limit"] == MAX_MESSAGE_BYTES


def test_close_codes_separate_reconnect_from_do_not_retry():
    assert should_reconnect(CloseCode.SLOW_CONSUMER)
    assert should_reconnect(CloseCode.GOING_AWAY)
    assert should_reconnect(CloseCode.TOKEN_EXPIRED)
    assert not should_reconnect(CloseCode.TOKEN_INVALID)
    assert not should_reconnect(CloseCode.TOO_MANY_ERRORS)
    assert not should_reconnect(CloseCode.NORMAL)


def test_peek_request_id_reads_what_it_can_and_nothing_else():
    from agentevents.protocol.messages import peek_request_id
    assert peek_request_id(b'{"type": "ping", "request_id": "r9"}') == "r9"
    assert peek_request_id(b"{broken") is None
    assert peek_request_id(b'{"request_id": 5}') is None


@pytest.mark.parametrize("number", ["1.0", "1e0", "-0.0", "true", "9223372036854775808", "18446744073709551616"])
def test_a_seq_is_an_integer_and_nothing_like_one(number):
    for frame in (f'{{"type": "subscribe", "thread_id": "t1", "since_seq": {number}}}',
                  f'{{"type": "resume", "threads": {{"t1": {number}}}}}'):
        with pytest.raises(ProtocolError) as caught:
            parse_client_message(frame)
        assert caught.value.code == ErrorCode.MALFORMED


def test_the_largest_seq_is_accepted():
    assert parse_client_message('{"type": "subscribe", "thread_id": "t1", "since_seq": 9223372036854775807}')
