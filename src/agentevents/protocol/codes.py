"""Stable error codes and WebSocket close codes, as documented in docs/protocol.md.

Close codes follow the Centrifugo split: 3000-3499 mean "reconnect and resume", 3500+ mean
"do not retry with the same credentials".
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ErrorCode(StrEnum):
    MALFORMED = "malformed_message"        # not JSON, not an object, or missing/invalid fields
    UNKNOWN_TYPE = "unknown_type"          # "type" is not a client message type
    TOO_LARGE = "message_too_large"        # frame over the protocol limit (connection stays up)
    FORBIDDEN = "forbidden"                # thread/run not yours, or missing permission
    UNKNOWN_AGENT = "unknown_agent"        # agent_type not in the registry
    RATE_LIMITED = "rate_limited"          # too many messages; retry after data.retry_after_ms
    INVALID_TOKEN = "invalid_token"        # auth_refresh with a bad token
    TOKEN_EXPIRED = "token_expired"        # sent just before closing with 3002
    TOO_MANY_RUNS = "too_many_runs"        # concurrent run limit of the user's tier
    UNAVAILABLE = "service_unavailable"    # the run could not be queued (Redis down); retry
    INTERNAL = "internal_error"


class CloseCode(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001           # server shutting down: reconnect and resume
    POLICY = 1008
    FRAME_TOO_BIG = 1009        # frame over the hard transport limit
    # Reconnect and resume (3000-3499)
    SERVER_RESTART = 3000
    SLOW_CONSUMER = 3001
    TOKEN_EXPIRED = 3002        # reconnect with a fresh token
    # Do not retry (3500+)
    TOKEN_INVALID = 3500
    TOO_MANY_ERRORS = 3501
    TOKEN_REVOKED = 3502        # the token (its jti) or its user was revoked while the connection was open
    USER_REVOKED = 3502         # the same code, by its earlier name


RECONNECT_CLOSE_CODES = frozenset(
    {CloseCode.GOING_AWAY, CloseCode.SERVER_RESTART, CloseCode.SLOW_CONSUMER, CloseCode.TOKEN_EXPIRED}
)


def should_reconnect(code: int) -> bool:
    """What a client should do with a close code: True means reconnect and resume."""
    if code in RECONNECT_CLOSE_CODES:
        return True
    if 3000 <= code < 3500:
        return True
    if code >= 3500:
        return False
    return code in (1006, 1011, 1012, 1013)
